//! Reading manifests, indexes and descriptors through the OCI image spec's
//! own types (`oci-spec`): what the spec allows in them — `urls`,
//! `artifactType`, `subject`, platform fields — is parsed by the spec's
//! definitions and kept in wso2img's model, which then writes its own
//! canonical JSON (so the bytes wso2img writes do not depend on that crate).

use std::collections::BTreeMap;

use oci_spec::image as oci;
use serde::{de, Deserialize, Deserializer};

use super::{Descriptor, Index, Manifest, Platform};

impl<'de> Deserialize<'de> for Descriptor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_spec(oci::Descriptor::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = oci::ImageManifest::deserialize(d)?;
        Ok(Manifest {
            schema_version: m.schema_version(),
            media_type: m.media_type().as_ref().map(|t| t.to_string()),
            artifact_type: m.artifact_type().as_ref().map(|t| t.to_string()),
            config: from_spec(m.config().clone()).map_err(de::Error::custom)?,
            layers: m.layers().iter().cloned().map(from_spec).collect::<Result<_, _>>().map_err(de::Error::custom)?,
            subject: m.subject().clone().map(from_spec).transpose().map_err(de::Error::custom)?,
            annotations: sorted(m.annotations()),
        })
    }
}

impl<'de> Deserialize<'de> for Index {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let i = oci::ImageIndex::deserialize(d)?;
        Ok(Index {
            schema_version: i.schema_version(),
            media_type: i.media_type().as_ref().map(|t| t.to_string()),
            artifact_type: i.artifact_type().as_ref().map(|t| t.to_string()),
            manifests: i
                .manifests()
                .iter()
                .cloned()
                .map(from_spec)
                .collect::<Result<_, _>>()
                .map_err(de::Error::custom)?,
            subject: i.subject().clone().map(from_spec).transpose().map_err(de::Error::custom)?,
            annotations: sorted(i.annotations()),
        })
    }
}

/// wso2img's descriptor of the spec's: sha256 digests only.
fn from_spec(d: oci::Descriptor) -> Result<Descriptor, String> {
    let digest = d.digest().to_string();
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest: digest.parse().map_err(|_| format!("digest {digest}: only sha256 digests are supported"))?,
        size: d.size(),
        urls: d.urls().clone().unwrap_or_default(),
        platform: d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
            os_version: p.os_version().clone(),
        }),
        annotations: sorted(d.annotations()),
        artifact_type: d.artifact_type().as_ref().map(|t| t.to_string()),
    })
}

fn sorted(a: &Option<std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    a.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f";

    #[test]
    fn foreign_layer_urls_and_referrer_fields_are_kept() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dsse.envelope.v1+json",
            "config":{{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"{D}"}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","size":3,"digest":"{D}","urls":["https://example.com/l"]}}],
            "subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":4,"digest":"{D}"}}}}"#
        );
        let m: Manifest = serde_json::from_str(&m).unwrap();
        assert_eq!(m.layers[0].urls, ["https://example.com/l"]);
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.dsse.envelope.v1+json"));
        assert_eq!(m.subject.as_ref().map(|s| s.size), Some(4));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["layers"][0]["urls"][0], "https://example.com/l");
        assert_eq!(back["subject"]["digest"], D);
    }

    #[test]
    fn docker_lists_and_attestation_entries_parse() {
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7,"digest":"{D}","platform":{{"architecture":"arm","os":"linux","variant":"v7","features":["sse4"]}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"{D}","platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
        );
        let i: Index = serde_json::from_str(&list).unwrap();
        assert_eq!(i.manifests[0].platform.as_ref().map(|p| p.to_string()).as_deref(), Some("linux/arm/v7"));
        assert!(!i.manifests[0].is_attestation() && i.manifests[1].is_attestation());
    }

    #[test]
    fn what_the_spec_or_wso2img_refuses_is_an_error() {
        let short = r#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:abc"},"layers":[]}"#;
        assert!(serde_json::from_str::<Manifest>(short).is_err());
        let no_layers = format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"x","size":1,"digest":"{D}"}}}}"#);
        assert!(serde_json::from_str::<Manifest>(&no_layers).is_err());
        let sha512 = format!(r#"{{"mediaType":"x","size":1,"digest":"sha512:{}"}}"#, "a".repeat(128));
        let e = serde_json::from_str::<Descriptor>(&sha512).unwrap_err().to_string();
        assert!(e.contains("only sha256"), "{e}");
    }
}
