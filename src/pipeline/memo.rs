//! The plan memo: what planning a customer folder's layers gave, kept in the
//! digest cache as a note under a key of everything that planning reads —
//! the folder's print (its names, kinds and `stat` keys), where it is, the
//! base's facts, the mtime, the variant, the arbitrary-UID setting and this
//! program's own build. An unchanged folder is then not planned entry by
//! entry: its layers are known by name, description, sizes and fingerprint
//! (the key of the cache's layers table). A layer's full spec is planned
//! again only when a step needs its entries (to hash or produce its bytes),
//! and its fingerprint must then be the memo's.
//!
//! The facts memo keeps what detecting a base's facts read from its layers
//! (its `/etc/passwd`, its folders), under the base config's digest.
//!
//! The memo is trusted exactly as far as the cache's other entries are: a
//! note is saved only once every file it covers has settled (git's racy
//! rule), and whoever produces bytes checks them.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, StatKey};
use crate::config::LayerKind;
use crate::digest::{Blocks, Digest};
use crate::inputs::FolderPrint;
use crate::layer::{LayerSpec, Owner};
use crate::wso2::Facts;

/// What the pipeline knows of a customer layer before its bytes are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Summary {
    /// Short name (`jars.a`, `themes`, …).
    pub(super) name: String,
    /// What it holds, for the image history.
    pub(super) description: String,
    /// Regular files and symlinks.
    pub(super) files: usize,
    /// Bytes of file content.
    pub(super) bytes: u64,
    /// Its fingerprint ([`LayerSpec::fingerprint`] with the walked keys): from
    /// the memo; for a layer planned in full, all zeros here (hashing takes
    /// it, and records it in the memo).
    pub(super) fingerprint: Digest,
}

/// How to plan a memo layer's full spec again: the memo's key, the folder
/// it came from (`None`: a main folder; `Some(v)`: one of variant `v`'s), the
/// facts it was planned with, the variant's name and the arbitrary-UID setting.
#[derive(Debug, Clone)]
pub(super) struct Recipe {
    pub(super) key: Digest,
    pub(super) walk: Option<usize>,
    pub(super) folder: usize,
    pub(super) facts: Facts,
    pub(super) variant: Option<String>,
    pub(super) arbitrary: bool,
}

/// A customer layer of the plan: summarised always, with its full spec
/// planned at once or — for a layer the memo supplied — on first need.
#[derive(Debug)]
pub(super) struct Planned {
    pub(super) summary: Summary,
    /// How to plan it again, for a layer from the memo.
    pub(super) recipe: Option<Recipe>,
    spec: OnceLock<LayerSpec>,
}

impl Planned {
    /// A layer planned entry by entry (its fingerprint is taken when it is hashed).
    pub(super) fn full(spec: LayerSpec) -> Planned {
        let summary = Summary {
            name: spec.name.clone(),
            description: spec.description.clone(),
            files: spec.file_count(),
            bytes: spec.content_bytes(),
            fingerprint: Digest::from_bytes([0; 32]),
        };
        Planned { summary, recipe: None, spec: OnceLock::from(spec) }
    }

    /// A layer the memo supplied.
    pub(super) fn from_memo(summary: Summary, recipe: Recipe) -> Planned {
        Planned { summary, recipe: Some(recipe), spec: OnceLock::new() }
    }

    /// Whether the memo supplied it.
    pub(super) fn is_memo(&self) -> bool {
        self.recipe.is_some()
    }

    /// Its full spec, when planned.
    pub(super) fn spec(&self) -> Option<&LayerSpec> {
        self.spec.get()
    }

    /// Keeps its full spec, planned again.
    pub(super) fn set_spec(&self, spec: LayerSpec) -> &LayerSpec {
        self.spec.get_or_init(|| spec)
    }

    /// Whether two layers are the same layer (so products share it).
    pub(super) fn same(&self, other: &Planned) -> bool {
        match (self.is_memo(), other.is_memo()) {
            (false, false) => self.spec() == other.spec(),
            (true, true) => self.summary == other.summary,
            _ => false,
        }
    }
}

/// Version of the memo's key and text; a change makes every memo a miss.
const FORMAT: &[u8] = b"wso2img plan memo 2";

/// What planning one folder reads besides its files.
pub(super) struct Context<'a> {
    pub(super) kind: LayerKind,
    pub(super) label: &'a str,
    pub(super) dir: &'a std::path::Path,
    pub(super) facts: &'a Facts,
    pub(super) mtime: u64,
    pub(super) variant: Option<&'a str>,
    pub(super) arbitrary_uid: bool,
}

/// The memo key of planning a folder with print `print` in context `cx`;
/// `None` when this program cannot tell its own build.
pub(super) fn key(print: &FolderPrint, cx: &Context<'_>) -> Option<Digest> {
    let mut h = Blocks::new();
    h.field(FORMAT);
    h.field(build_id()?);
    h.field(print.digest.bytes());
    h.field(cx.kind.name().as_bytes());
    h.field(cx.label.as_bytes());
    h.field(cx.dir.as_os_str().as_encoded_bytes());
    h.field(&serde_json::to_vec(&(cx.facts, &cx.facts.folders)).unwrap_or_default());
    h.update(&cx.mtime.to_le_bytes());
    match cx.variant {
        Some(v) => h.field(v.as_bytes()),
        None => h.update(b"main"),
    }
    h.update(&[cx.arbitrary_uid as u8]);
    Some(h.finish())
}

/// The layers the memo holds under `key`.
pub(super) fn get(cache: &Cache, key: &Digest) -> Option<Vec<Summary>> {
    serde_json::from_str(&cache.note(key)?).ok()
}

/// Remembers the layers planning gave under `key` (saved once the folder's
/// files have settled).
pub(super) fn put(cache: &Cache, key: Digest, layers: &[Summary], print: &FolderPrint) {
    if let Ok(text) = serde_json::to_string(layers) {
        cache.put_note(key, text, print.settled_after);
    }
}

/// Version of the facts memo's key; a change makes every entry a miss.
const FACTS_FORMAT: &[u8] = b"wso2img facts memo 2";

/// The key the facts of a base image are remembered under: its exact config
/// (which names every layer by digest), the `owner` setting and this
/// program's build; `None` when this program cannot tell its own build.
pub(super) fn facts_key(config: &[u8], owner: Option<Owner>) -> Option<Digest> {
    let mut h = Blocks::new();
    h.field(FACTS_FORMAT);
    h.field(build_id()?);
    h.field(Digest::of(config).bytes());
    h.field(&serde_json::to_vec(&owner).unwrap_or_default());
    Some(h.finish())
}

/// Base folders as the facts memo keeps them.
type Folders = std::collections::BTreeMap<String, (u32, Owner)>;

/// The facts remembered under `key`, folders included.
pub(super) fn facts(cache: &Cache, key: &Digest) -> Option<Facts> {
    let (mut facts, folders): (Facts, Folders) = serde_json::from_str(&cache.note(key)?).ok()?;
    facts.folders = folders;
    Some(facts)
}

/// Remembers `facts` (folders included) under `key`. They come from the
/// base's content alone, which its config pins: nothing can be racy.
pub(super) fn put_facts(cache: &Cache, key: Digest, facts: &Facts) {
    if let Ok(text) = serde_json::to_string(&(facts, &facts.folders)) {
        cache.put_note(key, text, 0);
    }
}

/// This program's build: its version and the `stat` key of its executable,
/// so that a rebuilt program (whose planning may differ) misses every memo.
fn build_id() -> Option<&'static [u8]> {
    static ID: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    ID.get_or_init(|| {
        let key = std::env::current_exe().and_then(|p| StatKey::stat(&p)).ok()?;
        let mut id = env!("CARGO_PKG_VERSION").as_bytes().to_vec();
        key.encode(&mut id);
        Some(id)
    })
    .as_deref()
}
