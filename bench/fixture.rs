//! Writes the benchmark customization: the shape measured in
//! ../shared/notes/peers.md — 109 jars (85 small, 24 of 0.2–5 MB and
//! incompressible), a 1,600-file devportal theme (PNG-like and JS files), two
//! keystores and a deployment.toml: about 110 MB. Deterministic: the same
//! bytes on every run, so timings compare like with like.
//!
//! With `--base-layout LAYOUT`, it also writes a WSO2-like base of about
//! 700 MB (an OS layer, three incompressible layers standing for the JDK and
//! product jars, the product tree) as an OCI layout tagged `4.3.0`.
//!
//! With `--large`, it writes the large customization instead (issue 12's
//! shape): 200 jars of 5 MB (incompressible, each its own Maven artifact),
//! 50,000 devportal theme files of about 4 KB, two keystores and a
//! deployment.toml: about 1.2 GB. With `--base-layout`, the base is then the
//! small 4.3-shaped sample (no filler layers).
//!
//! Usage: cargo run --release --example bench-fixture -- DIR [BASE] [--base-layout LAYOUT] [--large]

use std::fs;
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// A valid jar: one stored entry of `body` and a pom.properties.
fn jar(artifact: &str, body: &[u8]) -> Vec<u8> {
    let pom = format!("groupId=com.bench\nartifactId={artifact}\nversion=1.0\n");
    let entries: [(String, &[u8]); 2] = [
        (format!("META-INF/maven/com.bench/{artifact}/pom.properties"), pom.as_bytes()),
        ("lib/blob.bin".to_string(), body),
    ];
    let mut out = Vec::with_capacity(body.len() + 512);
    let mut cd = Vec::new();
    for (name, data) in &entries {
        let off = out.len() as u32;
        let crc = crc32fast::hash(data);
        let fields = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend_from_slice(&[20, 0]);
            }
            h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&[0, 0]);
            if central {
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&off.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(fields(b"PK\x03\x04", false));
        out.extend_from_slice(data);
        cd.extend(fields(b"PK\x01\x02", true));
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x02\0\x02\0");
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let layout = args.iter().position(|a| a == "--base-layout").map(|i| {
        let v = args.get(i + 1).cloned().expect("--base-layout needs a folder");
        args.drain(i..i + 2);
        v
    });
    let large = args.iter().any(|a| a == "--large");
    args.retain(|a| a != "--large");
    let mut args = args.into_iter();
    let root = args.next().expect("usage: bench-fixture DIR [BASE] [--base-layout LAYOUT] [--large]");
    let base = args.next().unwrap_or_else(|| "builtin:wso2am-4.3.0".into());
    if let Some(layout) = layout {
        let mut sample = wso2img::wso2::sample::SampleBase::v430();
        if !large {
            sample.filler = vec![80_000_000, 170_000_000, 450_000_000];
        }
        let set = sample.image_set().expect("generating the base");
        let d = wso2img::transport::oci::LayoutDestination::new(Path::new(&layout), None)
            .write_verbatim(&["4.3.0".to_string()], &set)
            .expect("writing the base");
        eprintln!("bench-fixture: base in {layout} ({d})");
    }
    let root = Path::new(&root);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut total = 0usize;
    if large {
        write_large(root, &mut rng, &mut total);
    } else {
        write_small(root, &mut rng, &mut total);
    }
    for k in ["wso2carbon.jks", "client-truststore.jks"] {
        let mut b = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2];
        b.extend(rng.bytes(40_000));
        total += b.len();
        write(root, &format!("keystores/{k}"), &b);
    }
    write(root, "overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"bench.example\"\n");
    write(
        root,
        "wso2img.toml",
        format!("[base]\nimage = \"{base}\"\n[layers]\nbake_keystores = true\n[target]\nrepository = \"localhost:5000/bench/wso2am\"\n").as_bytes(),
    );
    eprintln!("bench-fixture: {} MB of customization in {}", total / 1_000_000, root.display());
}

/// 200 jars of 5 MB and 50,000 theme files of about 4 KB.
fn write_large(root: &Path, rng: &mut Rng, total: &mut usize) {
    for i in 0..200 {
        let b = jar(&format!("acme-module{i:03}"), &rng.bytes(5_000_000));
        *total += b.len();
        write(root, &format!("jars/acme-module{i:03}-1.0.0.jar"), &b);
    }
    for i in 0..50_000 {
        let n = 1_000 + (rng.next() % 6_000) as usize;
        let (rel, b) = theme_file(rng, i, n);
        *total += b.len();
        write(root, &format!("themes/devportal/{rel}"), &b);
    }
    write(root, "themes/devportal/userTheme.json", b"{\"custom\":{\"title\":{\"prefix\":\"BENCH\"}}}\n");
}

/// A PNG-like or JavaScript theme file of about `n` bytes.
fn theme_file(rng: &mut Rng, i: usize, n: usize) -> (String, Vec<u8>) {
    if i.is_multiple_of(2) {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend(rng.bytes(n));
        (format!("images/icons/set{:02}/icon-{i:05}.png", i % 40), b)
    } else {
        let mut s = String::new();
        while s.len() < n {
            let k = s.len() / 64;
            s += &format!(
                "export const style{k} = {{ color: '#{:06x}', margin: {} }};\n",
                rng.next() % 0xffffff,
                k % 16
            );
        }
        (format!("js/module{:02}/part-{i:05}.js", i % 40), s.into_bytes())
    }
}

/// The 110 MB customization of ../shared/notes/peers.md.
fn write_small(root: &Path, rng: &mut Rng, total: &mut usize) {
    for i in 0..85 {
        let n = 8_000 + (rng.next() % 60_000) as usize;
        let b = jar(&format!("lib-small-{i:03}"), &rng.bytes(n));
        *total += b.len();
        write(root, &format!("jars/lib-small-{i:03}-1.0.{}.jar", i % 7), &b);
    }
    for i in 0..24 {
        let n = if i < 4 { 200_000 + i * 250_000 } else { 4_600_000 + (i % 5) * 100_000 };
        let b = jar(&format!("vendor-big-{i:02}"), &rng.bytes(n));
        *total += b.len();
        write(root, &format!("jars/vendor-big-{i:02}-2.{i}.0.jar"), &b);
    }
    for i in 0..1_600 {
        let n = if i % 2 == 0 { 1_000 + (rng.next() % 3_000) as usize } else { 1_000 + (rng.next() % 4_000) as usize };
        let (rel, b) = theme_file(rng, i, n);
        *total += b.len();
        write(root, &format!("themes/devportal/{rel}"), &b);
    }
    write(root, "themes/devportal/userTheme.json", b"{\"custom\":{\"title\":{\"prefix\":\"BENCH\"}}}\n");
}
