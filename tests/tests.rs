//! Integration tests: they drive the real `wso2img` binary and check its
//! output with independent tools (umoci, skopeo, a real dockerd).

mod suite;
