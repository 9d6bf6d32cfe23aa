//! Small WSO2-like base images, generated deterministically as an
//! [`ImageSet`]: the same tree and config shape as the official
//! `wso2/wso2am*` images (user, product home, entrypoint, env), a few
//! kilobytes instead of a gigabyte. They back the `builtin:` transport (so
//! the tool can be tried with no registry) and the tests. Writing one into an
//! OCI layout or a `docker save` archive is the transports' job.
//!
//! [`SampleBase::v430`] and [`SampleBase::v410`] are the generic samples: no
//! shell, and an entrypoint program (`entrypoint/*.S`, per architecture) that
//! prints the start line and what a customization added.
//! [`SampleBase::official`] follows the official Dockerfile, entrypoint,
//! `profileSetup.sh` and start-up of each kind and version (see `official.rs`);
//! with a static busybox it runs under `docker run`.

mod official;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use crate::digest::{Digest, HashWriter};
use crate::error::{Error, Result};
use crate::image::json::canonical;
use crate::image::{mutate, Blob, Descriptor, Image, ImageSet, MediaFamily, Platform};
use crate::layer::gzip::ParallelGzip;
use crate::layer::tar::{self as tarw, EntryType};
use crate::wso2::ProductKind;

/// The generic samples' entrypoint program for an architecture (`amd64`,
/// `arm64`): a static ELF built from `entrypoint/<arch>.S` by
/// `entrypoint/build.sh`.
pub fn entrypoint_program(architecture: &str) -> Option<&'static [u8]> {
    match architecture {
        "amd64" => Some(include_bytes!("entrypoint/x86_64.bin")),
        "arm64" => Some(include_bytes!("entrypoint/aarch64.bin")),
        _ => None,
    }
}

/// The distribution the official Dockerfile builds on, which sets the mode
/// of the user's home (`useradd --create-home` / BusyBox `adduser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleOs {
    /// `ubuntu:24.04`: private homes, 0750.
    Ubuntu,
    /// Rocky Linux 9: 0700.
    Rocky,
    /// Alpine: BusyBox `adduser` makes 02755.
    Alpine,
}

impl SampleOs {
    /// The mode of the home `useradd`/`adduser` creates.
    pub fn home_mode(self) -> u32 {
        match self {
            SampleOs::Ubuntu => 0o750,
            SampleOs::Rocky => 0o700,
            SampleOs::Alpine => 0o2755,
        }
    }
}

/// How the sample base names its runtime user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleUser {
    /// `USER <uid>` (4.3 and later).
    Numeric(u32),
    /// `USER wso2carbon`, resolved through /etc/passwd (older images).
    Named(u32),
}

impl SampleUser {
    fn uid(&self) -> u32 {
        match self {
            SampleUser::Numeric(u) | SampleUser::Named(u) => *u,
        }
    }
}

/// A recipe for a sample base.
#[derive(Debug, Clone)]
pub struct SampleBase {
    /// Product version, e.g. `4.3.0`.
    pub version: String,
    /// Which image: all-in-one, control plane, traffic manager or gateway.
    pub kind: ProductKind,
    /// Follow the official image's shape, start-up included (`official.rs`);
    /// `false` is the generic shape (`USER` as given, four ports, the
    /// entrypoint program).
    pub official: bool,
    /// Runtime user.
    pub user: SampleUser,
    /// Platforms (several make an index).
    pub platforms: Vec<Platform>,
    /// Media types.
    pub family: MediaFamily,
    /// A static busybox to include so the image runs (`/bin/busybox`).
    pub busybox: Option<PathBuf>,
    /// Add a BuildKit-style attestation manifest per platform to the index (OCI, multi-platform).
    pub attestation: bool,
    /// Sizes of extra layers of incompressible bytes (in files of at most
    /// 8 MB under `opt/filler-N/`), to give the base a realistic weight.
    pub filler: Vec<u64>,
    /// The distribution of an official shape, for its home's mode (the generic samples' home is 0755).
    pub os: SampleOs,
}

impl SampleBase {
    /// The 4.3-like base: numeric user 10001, `webapps/`, OCI, one platform.
    pub fn v430() -> Self {
        SampleBase {
            version: "4.3.0".into(),
            kind: ProductKind::AllInOne,
            official: false,
            user: SampleUser::Numeric(10001),
            platforms: vec![Platform::new("linux", "amd64", None)],
            family: MediaFamily::Oci,
            busybox: None,
            attestation: false,
            filler: Vec::new(),
            os: SampleOs::Ubuntu,
        }
    }

    /// The 4.1-like base: named user `wso2carbon` = 802, `jaggeryapps/`, Docker media types.
    pub fn v410() -> Self {
        SampleBase {
            version: "4.1.0".into(),
            kind: ProductKind::AllInOne,
            official: false,
            user: SampleUser::Named(802),
            platforms: vec![Platform::new("linux", "amd64", None)],
            family: MediaFamily::Docker,
            busybox: None,
            attestation: false,
            filler: Vec::new(),
            os: SampleOs::Ubuntu,
        }
    }

    /// A base in the shape of the official Dockerfile of `kind` and `version`:
    /// `USER 802` up to 4.2, `10001` from 4.3; Docker media types for 4.1
    /// (ubuntu), amd64+arm64 for 4.2 (alpine), an OCI index for amd64+arm64
    /// with an attestation manifest per platform from 4.5 (BuildKit-published),
    /// one OCI platform otherwise; Ubuntu's home mode (set `os` for another).
    pub fn official(kind: ProductKind, version: &str) -> Self {
        let (major, minor) = crate::wso2::major_minor(Some(version)).unwrap_or((4, 5));
        let old = major < 4 || (major == 4 && minor <= 2);
        let modern = major > 4 || (major == 4 && minor >= 5);
        let both = vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", Some("v8"))];
        SampleBase {
            version: version.into(),
            kind,
            official: true,
            user: SampleUser::Numeric(if old { 802 } else { 10001 }),
            platforms: if modern || (major, minor) == (4, 2) {
                both
            } else {
                vec![Platform::new("linux", "amd64", None)]
            },
            family: if (major, minor) <= (4, 1) { MediaFamily::Docker } else { MediaFamily::Oci },
            busybox: None,
            attestation: modern,
            filler: Vec::new(),
            os: SampleOs::Ubuntu,
        }
    }

    /// The built-in sample called `name` (one of [`SampleBase::BUILTIN_NAMES`]).
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "wso2am-4.3.0" => Some(Self::v430()),
            "wso2am-4.1.0" => Some(Self::v410()),
            _ if Self::BUILTIN_NAMES.contains(&name) => {
                let (kind, _, version) = crate::wso2::server_of(name)?;
                Some(Self::official(kind, &version))
            }
            _ => None,
        }
    }

    /// Names accepted by [`SampleBase::builtin`]: the two generic samples and
    /// the official shapes.
    pub const BUILTIN_NAMES: [&'static str; 8] = [
        "wso2am-4.3.0",
        "wso2am-4.1.0",
        "wso2am-4.2.0",
        "wso2am-4.4.0",
        "wso2am-4.5.0",
        "wso2am-acp-4.5.0",
        "wso2am-tm-4.5.0",
        "wso2am-universal-gw-4.5.0",
    ];

    /// The product folder's name, e.g. `wso2am-tm-4.5.0`.
    pub fn server_folder(&self) -> String {
        format!("{}-{}", self.kind.server(), self.version)
    }

    /// The base as an image set held in memory: per platform the OS layer,
    /// the filler layers and the product layer (which holds the
    /// architecture's entrypoint program in the generic samples).
    pub fn image_set(&self) -> Result<ImageSet> {
        let home = "/home/wso2carbon".to_string();
        let product = format!("{home}/{}", self.server_folder());
        let family = self.family;
        let layer_type = family.layer_gzip();
        let mut shared = vec![gzip_layer(&self.os_tar()?)?];
        for (i, size) in self.filler.iter().enumerate() {
            shared.push(gzip_layer(&filler_tar(i, *size))?);
        }
        let mut product_layers: BTreeMap<&str, (Vec<u8>, Digest)> = BTreeMap::new();
        for p in &self.platforms {
            if !product_layers.contains_key(p.architecture.as_str()) {
                let tar = if self.official {
                    self.official_product_tar(&product)?
                } else {
                    self.product_tar(&product, &p.architecture)?
                };
                product_layers.insert(&p.architecture, gzip_layer(&tar)?);
            }
        }
        let os_line =
            if self.busybox.is_some() { "sample OS: busybox, passwd, group" } else { "sample OS: passwd, group" };
        let mut history = vec![json!({"created": "2024-05-01T00:00:00Z", "created_by": os_line})];
        for (i, size) in self.filler.iter().enumerate() {
            history.push(
                json!({"created": "2024-05-01T00:00:00Z", "created_by": format!("sample filler {i}: {size} bytes")}),
            );
        }
        let tree = if self.official {
            format!("sample WSO2 API Manager {} {} tree", self.kind.name(), self.version)
        } else {
            format!("sample WSO2 API Manager {} tree and entrypoint program", self.version)
        };
        history.push(json!({"created": "2024-05-01T00:00:00Z", "created_by": tree}));
        let ports: serde_json::Map<String, serde_json::Value> = if self.official {
            self.kind.exposed_ports().iter().map(|p| (format!("{p}/tcp"), json!({}))).collect()
        } else {
            ["9443/tcp", "8243/tcp", "8280/tcp", "9763/tcp"].iter().map(|p| (p.to_string(), json!({}))).collect()
        };
        let mut images = Vec::new();
        for p in &self.platforms {
            let built: Vec<&(Vec<u8>, Digest)> =
                shared.iter().chain(std::iter::once(&product_layers[p.architecture.as_str()])).collect();
            let layers: Vec<Blob> = built.iter().map(|(gz, _)| Blob::bytes(layer_type, gz.clone())).collect();
            let diff_ids: Vec<String> = built.iter().map(|(_, d)| d.to_string()).collect();
            let user = match self.user {
                SampleUser::Numeric(u) => u.to_string(),
                SampleUser::Named(_) => "wso2carbon".to_string(),
            };
            let mut cfg = json!({
                "architecture": p.architecture,
                "os": p.os,
                "created": "2024-05-01T00:00:00Z",
                "config": {
                    "User": user,
                    "Env": [
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/java/openjdk/bin",
                        "JAVA_HOME=/opt/java/openjdk",
                        format!("WORKING_DIRECTORY={home}"),
                        format!("WSO2_SERVER_HOME={product}"),
                        "LANG=C.UTF-8",
                    ],
                    "Entrypoint": [format!("{home}/docker-entrypoint.sh")],
                    "WorkingDir": home,
                    "ExposedPorts": ports,
                    "ArgsEscaped": true,
                },
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": history,
            });
            if let Some(v) = &p.variant {
                cfg["variant"] = json!(v);
            }
            let config = Blob::bytes(family.config(), canonical(&cfg));
            let descs: Vec<Descriptor> = layers.iter().map(|l| l.desc.clone()).collect();
            let manifest =
                Blob::bytes(family.manifest(), mutate::manifest(family, &config.desc, &descs, &BTreeMap::new()));
            images.push(Image { platform: p.clone(), manifest, config, layers });
        }
        let (index, attachments) = if images.len() > 1 {
            let mut entries: Vec<Descriptor> = images
                .iter()
                .map(|i| Descriptor { platform: Some(i.platform.clone()), ..i.manifest.desc.clone() })
                .collect();
            let mut extra = Vec::new();
            // BuildKit publishes one attestation manifest per platform.
            if self.attestation && family == MediaFamily::Oci {
                for image in &images {
                    let (att, blobs) = attestation(&image.manifest.desc.digest);
                    entries.push(att);
                    extra.extend(blobs);
                }
            }
            let idx = Blob::bytes(family.index(), mutate::index(family, &entries, &BTreeMap::new()));
            (Some(idx), extra)
        } else {
            (None, Vec::new())
        };
        Ok(ImageSet { family, images, index, attachments })
    }

    fn os_tar(&self) -> Result<Vec<u8>> {
        let uid = self.user.uid();
        let mut t = TarBuf::default();
        for d in ["bin/", "etc/", "home/", "opt/", "opt/java/", "opt/java/openjdk/", "opt/java/openjdk/bin/", "tmp/"] {
            t.dir(d, if d == "tmp/" { 0o1777 } else { 0o755 }, 0);
        }
        if let Some(bb) = &self.busybox {
            let bytes = std::fs::read(bb).map_err(|e| Error::io("reading busybox", bb, e))?;
            t.file("bin/busybox", &bytes, 0o755, 0);
            let mut applets =
                vec!["sh", "ls", "stat", "cat", "id", "echo", "find", "sleep", "test", "head", "wc", "env"];
            if self.official {
                applets.extend(official::APPLETS);
            }
            for applet in applets {
                t.symlink(&format!("bin/{applet}"), "busybox");
            }
        }
        t.file("etc/group", format!("root:x:0:\nwso2:x:{uid}:\n").as_bytes(), 0o644, 0);
        t.file(
            "etc/passwd",
            format!("root:x:0:0:root:/root:/bin/sh\nwso2carbon:x:{uid}:{uid}::/home/wso2carbon:/bin/sh\n").as_bytes(),
            0o644,
            0,
        );
        t.file("opt/java/openjdk/release", b"JAVA_VERSION=\"17.0.10\"\n", 0o644, 0);
        Ok(t.finish())
    }

    /// The generic samples' product tree; the entrypoint is the program for `architecture`.
    fn product_tar(&self, product: &str, architecture: &str) -> Result<Vec<u8>> {
        let entrypoint = entrypoint_program(architecture).ok_or_else(|| {
            Error::usage(format!(
                "sample base {}: no entrypoint program for {architecture}; use linux/amd64 or linux/arm64",
                self.version
            ))
        })?;
        let uid = self.user.uid();
        let p = product.trim_start_matches('/');
        let apps = crate::wso2::portal_apps_dir(Some(&self.version));
        let theme_file = if apps == "webapps" { "userTheme.json" } else { "userTheme.js" };
        let mut t = TarBuf::default();
        let own = |t: &mut TarBuf, d: &str| t.dir(d, 0o755, uid);
        own(&mut t, "home/wso2carbon/");
        t.file("home/wso2carbon/docker-entrypoint.sh", entrypoint, 0o755, uid);
        for d in ["solr/", "solr/indexed-data/", "solr/database/"] {
            own(&mut t, &format!("home/wso2carbon/{d}"));
        }
        for d in [
            "",
            "bin/",
            "repository/",
            "repository/components/",
            "repository/components/lib/",
            "repository/components/dropins/",
            "repository/conf/",
            "repository/database/",
            "repository/deployment/",
            "repository/deployment/server/",
            &format!("repository/deployment/server/{apps}/"),
            &format!("repository/deployment/server/{apps}/devportal/"),
            &format!("repository/deployment/server/{apps}/devportal/site/"),
            &format!("repository/deployment/server/{apps}/devportal/site/public/"),
            &format!("repository/deployment/server/{apps}/devportal/site/public/theme/"),
            "repository/resources/",
            "repository/resources/security/",
        ] {
            own(&mut t, &format!("{p}/{d}"));
        }
        t.file(
            &format!("{p}/bin/api-manager.sh"),
            format!("#!/bin/sh\necho \"WSO2 API Manager {} (sample) starting with: $*\"\n", self.version).as_bytes(),
            0o755,
            uid,
        );
        t.file(&format!("{p}/repository/conf/deployment.toml"), b"[server]\nhostname = \"localhost\"\n", 0o644, uid);
        t.file(
            &format!("{p}/repository/deployment/server/{apps}/devportal/site/public/theme/{theme_file}"),
            b"{}\n",
            0o644,
            uid,
        );
        t.file(
            &format!("{p}/repository/resources/security/wso2carbon.jks"),
            &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0],
            0o644,
            uid,
        );
        Ok(t.finish())
    }
}

fn attestation(subject: &Digest) -> (Descriptor, Vec<Blob>) {
    let statement = canonical(
        &json!({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": subject.hex()}}]}),
    );
    let layer = Blob::bytes("application/vnd.in-toto+json", statement);
    let config =
        Blob::bytes(crate::image::media::OCI_CONFIG, canonical(&json!({"architecture": "unknown", "os": "unknown"})));
    let manifest = Blob::bytes(
        crate::image::media::OCI_MANIFEST,
        mutate::manifest(MediaFamily::Oci, &config.desc, std::slice::from_ref(&layer.desc), &BTreeMap::new()),
    );
    let mut d = manifest.desc.clone();
    d.platform = Some(Platform::new("unknown", "unknown", None));
    d.annotations.insert("vnd.docker.reference.type".into(), "attestation-manifest".into());
    d.annotations.insert("vnd.docker.reference.digest".into(), subject.to_string());
    (d, vec![manifest, config, layer])
}

/// A layer of `size` incompressible bytes in files of at most 8 MB.
fn filler_tar(index: usize, size: u64) -> Vec<u8> {
    let mut t = TarBuf::default();
    t.dir(&format!("opt/filler-{index}/"), 0o755, 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ index as u64;
    let mut left = size;
    let mut n = 0;
    while left > 0 {
        let len = left.min(8 << 20) as usize;
        let mut data = Vec::with_capacity(len + 8);
        while data.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(len);
        t.file(&format!("opt/filler-{index}/part-{n:04}.bin"), &data, 0o644, 0);
        left -= len as u64;
        n += 1;
    }
    t.finish()
}

fn gzip_layer(tar: &[u8]) -> Result<(Vec<u8>, Digest)> {
    let mut w = HashWriter::new(ParallelGzip::new(Vec::new(), crate::layer::threads()));
    std::io::Write::write_all(&mut w, tar).map_err(|e| Error::source(format!("sample layer: {e}")))?;
    let (gz, diff_id, _) = w.finish();
    let gz = gz.finish().map_err(|e| Error::source(format!("sample layer: {e}")))?;
    Ok((gz, diff_id))
}

#[derive(Default)]
struct TarBuf(Vec<u8>);

impl TarBuf {
    const MTIME: u64 = 1_714_521_600;

    fn header(&mut self, path: &str, kind: EntryType, mode: u32, uid: u32, size: u64, link: &str) {
        let h = tarw::Header { path, kind, mode, uid, gid: uid, size, mtime: Self::MTIME, link };
        tarw::write_header(&mut self.0, &h).expect("writing to memory cannot fail");
    }
    fn dir(&mut self, path: &str, mode: u32, uid: u32) {
        self.header(path, EntryType::Dir, mode, uid, 0, "");
    }
    fn file(&mut self, path: &str, data: &[u8], mode: u32, uid: u32) {
        self.header(path, EntryType::File, mode, uid, data.len() as u64, "");
        self.0.extend_from_slice(data);
        tarw::pad(&mut self.0, data.len() as u64).expect("writing to memory cannot fail");
    }
    fn symlink(&mut self, path: &str, target: &str) {
        self.header(path, EntryType::Symlink, 0o777, 0, 0, target);
    }
    fn finish(mut self) -> Vec<u8> {
        tarw::finish(&mut self.0).expect("writing to memory cannot fail");
        self.0
    }
}
