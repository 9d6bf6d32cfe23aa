//! `build --digest-file FILE` and `--metadata-file FILE`: what a CI job reads
//! after a build. The digest file holds the main image's digest as written to
//! its first destination (like buildah's `--digestfile`, no newline); the
//! metadata file is a JSON object shaped like `docker buildx build
//! --metadata-file`, plus wso2img's own `content_digest`, `tag` and `outputs`.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use wso2img::files::write_output;
use wso2img::pipeline::Report;
use wso2img::reference::Location;
use wso2img::{Error, Result};

/// The files to write after a successful build.
pub struct Files {
    digest: Option<PathBuf>,
    metadata: Option<PathBuf>,
}

impl Files {
    /// Checks, before anything is built, that each file can be created: its
    /// folder exists and it is not a folder itself.
    pub fn new(digest: Option<PathBuf>, metadata: Option<PathBuf>) -> Result<Files> {
        for (flag, p) in [("--digest-file", &digest), ("--metadata-file", &metadata)] {
            if let Some(p) = p {
                wso2img::files::check_output(p, flag)?;
            }
        }
        Ok(Files { digest, metadata })
    }

    /// The paths among these files that mean standard output (`-`).
    pub fn stdout_users(&self) -> Vec<String> {
        [("--digest-file", &self.digest), ("--metadata-file", &self.metadata)]
            .into_iter()
            .filter_map(|(f, p)| p.as_ref().map(|p| (f, p)))
            .filter(|(_, p)| wso2img::files::Target::of(p) == wso2img::files::Target::Stdout)
            .map(|(f, p)| format!("{f} {}", p.display()))
            .collect()
    }

    /// Writes the files asked for, from the build's report.
    pub fn write(&self, rep: &Report) -> Result<()> {
        let main = rep.outputs.first().map(|o| o.digest);
        if let Some(p) = &self.digest {
            let d =
                main.ok_or_else(|| Error::usage(format!("--digest-file {}: the build wrote no output", p.display())))?;
            write_output(p, d.to_string().as_bytes())?;
        }
        if let Some(p) = &self.metadata {
            let mut text = serde_json::to_string_pretty(&metadata(rep)).expect("metadata serializes");
            text.push('\n');
            write_output(p, text.as_bytes())?;
        }
        Ok(())
    }
}

/// The metadata object: `containerimage.digest` (the first destination's
/// digest), `containerimage.config.digest` (one platform only),
/// `image.name` (every name given to the main image, comma-separated),
/// `content_digest`, `tag` and `outputs`.
pub fn metadata(rep: &Report) -> Value {
    let mut m = Map::new();
    if let Some(o) = rep.outputs.first() {
        m.insert("containerimage.digest".into(), json!(o.digest));
    }
    if let [p] = rep.platforms.as_slice() {
        m.insert("containerimage.config.digest".into(), json!(p.config_digest));
    }
    m.insert("image.name".into(), json!(names(rep).join(",")));
    m.insert("content_digest".into(), json!(rep.content_digest));
    m.insert("tag".into(), json!(rep.tag));
    m.insert("outputs".into(), json!(rep.outputs));
    Value::Object(m)
}

/// Every name the main image got: `HOST/REPO:TAG` per tag in a registry or
/// the Docker daemon, `oci:DIR:TAG` per tag in a layout, the archive itself.
fn names(rep: &Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in &rep.outputs {
        let mut add = |n: String| {
            if !out.contains(&n) {
                out.push(n);
            }
        };
        let names = o.reference.parse::<Location>().ok().and_then(|l| wso2img::transport::of(&l).names(&rep.tags));
        match names {
            Some(names) => names.into_iter().for_each(&mut add),
            None => add(o.reference.clone()),
        }
    }
    out
}
