//! Policy decision time per command over the corpora: parse, look through wrappers,
//! class, and decide on one host (what every `exec` pays once per command and host).
//! Prints one JSON line; `bench/policy.sh` puts it beside the end-to-end cost of one
//! `exec`.
//!
//!     cargo run --release -p warden-core --example policy_bench

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use warden_core::config::{Config, STARTER_CONFIG};
use warden_core::inventory::Inventory;
use warden_core::policy::{CommandOrigin, Input, Policy};

const EVERYDAY: &str = include_str!("../src/policy/corpus/everyday.txt");
const BYPASS: &str = include_str!("../src/policy/corpus/bypass.txt");

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let yaml = STARTER_CONFIG.replacen("hosts:\n", "hosts:\n  - {id: web-1, address: a}\n", 1);
    let config = Config::parse(&yaml).expect("starter config");
    let inventory = Inventory::from_config(&config);
    let policy = Policy::new(&config.policy, &inventory).expect("policy");
    let host = inventory.require("web-1").expect("host");
    let commands: Vec<String> = EVERYDAY
        .lines()
        .map(str::to_owned)
        .chain(BYPASS.lines().filter_map(|line| {
            let (_, command) = line.split_once('\t')?;
            Some(command.replace('⏎', "\n"))
        }))
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    let rounds = 50;
    let mut micros = Vec::with_capacity(commands.len() * rounds);
    for _ in 0..rounds {
        for command in &commands {
            let started = Instant::now();
            let analysis = policy.analyze(Input::shell(command));
            let decision = policy.evaluate(&host, "bench", &analysis, CommandOrigin::Caller);
            std::hint::black_box(decision);
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    println!(
        "{{\"label\":\"policy-decision\",\"commands\":{},\"samples\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
        commands.len(),
        micros.len(),
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros[micros.len() - 1]
    );
}
