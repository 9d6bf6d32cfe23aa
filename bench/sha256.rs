//! sha256 throughput on one core: one stream, and two streams hashed side by
//! side (`Hasher::update_pair`), as layer hashing does. `cargo run --release
//! --example sha256-pair [MiB]` prints GB/s of each, best of five.

use std::time::Instant;

use wso2img::digest::Hasher;

fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let x: Vec<u8> = (0..mib << 20).map(|i| (i * 7 + 3) as u8).collect();
    let y: Vec<u8> = (0..mib << 20).map(|i| (i * 13 + 1) as u8).collect();
    let best = |f: &dyn Fn() -> (Hasher, Hasher)| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let (a, b) = f();
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(a.len() + b.len(), 2 * x.len() as u64);
                secs
            })
            .fold(f64::MAX, f64::min)
    };
    let chunk = 256 << 10;
    let one = best(&|| {
        let (mut a, mut b) = (Hasher::new(), Hasher::new());
        x.chunks(chunk).for_each(|c| a.update(c));
        y.chunks(chunk).for_each(|c| b.update(c));
        (a, b)
    });
    let two = best(&|| {
        let (mut a, mut b) = (Hasher::new(), Hasher::new());
        for (cx, cy) in x.chunks(chunk).zip(y.chunks(chunk)) {
            Hasher::update_pair(&mut a, cx, &mut b, cy);
        }
        (a, b)
    });
    let gbs = |secs: f64| 2.0 * x.len() as f64 / secs / 1e9;
    println!("one stream at a time: {:.2} GB/s", gbs(one));
    println!("two streams side by side: {:.2} GB/s ({:.2}x)", gbs(two), one / two);
}
