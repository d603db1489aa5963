//! Matcher benchmark: every citylots-shaped event (from `citylots_synth.py`) against each rule set
//! of `citylots_rules.json`, with opsloop's compiled `Matcher::matches_json` and with the quamina
//! crate; checks both find the same rules for every event, then reports events/s for each and the
//! ratio (per CPU-second of the matching thread, and per wall-clock second). A second table measures opsloop's matching rate against rule count (1, 100, 10,000
//! synthetic rules over the same events).
//!
//! Usage: `opsloop-bench-events-match [EVENTS_FILE] [--rules RULES_JSON] [--rounds N]`. Without an
//! events file, `citylots_synth.py` (next to the rules file) generates its default 213,068 events
//! into the system's temp directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use opsloop_eventpattern::{parse, Matcher};

struct Args {
    events: Option<PathBuf>,
    rules: PathBuf,
    rounds: usize,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        events: None,
        rules: PathBuf::from("../shared/bench/citylots_rules.json"),
        rounds: 3,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--rules" => a.rules = it.next().expect("--rules FILE").into(),
            "--only" => a.only = Some(it.next().expect("--only SET")),
            "--wall-only" => WALL_ONLY.store(true, std::sync::atomic::Ordering::Relaxed),
            "--rounds" => a.rounds = it.next().expect("--rounds N").parse().expect("a number"),
            "-h" | "--help" => {
                println!("usage: opsloop-bench-events-match [EVENTS_FILE] [--rules RULES_JSON] [--rounds N] [--only SET|syntheticN] [--wall-only]");
                std::process::exit(0);
            }
            _ => a.events = Some(x.into()),
        }
    }
    if !a.rules.exists() {
        let alt = PathBuf::from("/work/shared/bench/citylots_rules.json");
        if alt.exists() {
            a.rules = alt;
        }
    }
    a
}

fn load_events(path: Option<PathBuf>, rules: &Path) -> Vec<Vec<u8>> {
    let path = path.unwrap_or_else(|| {
        let out = std::env::temp_dir().join("opsloop-citylots-synth.jlines");
        if !out.exists() {
            let script = rules.with_file_name("citylots_synth.py");
            eprintln!("generating events with {}", script.display());
            let st = Command::new("python3")
                .arg(&script)
                .arg("213068")
                .arg(&out)
                .status()
                .expect("run python3");
            assert!(st.success(), "citylots_synth.py failed");
        }
        out
    });
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

/// On-CPU time of the calling thread, in seconds: unlike wall time it does not count the time the
/// thread waits for a core, which on a shared machine is most of the noise.
fn cpu_now() -> f64 {
    if WALL_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return 0.0;
    }
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// `--wall-only`: no CPU clock (valgrind cannot follow the vDSO call behind it); the CPU columns
/// are then meaningless.
static WALL_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One matcher's rates: best-of-rounds events per CPU-second and per wall-second, and its total
/// matches.
struct Rate {
    cpu: f64,
    wall: f64,
    total: usize,
}

/// Rates of `a` and of `b` over all events, best of `rounds` each (rounds interleaved, so load
/// from other processes falls on both alike).
fn time2<A, B>(events: &[Vec<u8>], rounds: usize, mut a: A, mut b: B) -> (Rate, Rate)
where
    A: FnMut(&[u8]) -> usize,
    B: FnMut(&[u8]) -> usize,
{
    let n = events.len() as f64;
    let mut ra = Rate {
        cpu: 0.0,
        wall: 0.0,
        total: 0,
    };
    let mut rb = Rate {
        cpu: 0.0,
        wall: 0.0,
        total: 0,
    };
    let one = |f: &mut dyn FnMut(&[u8]) -> usize, r: &mut Rate| {
        let (w0, c0) = (Instant::now(), cpu_now());
        r.total = events.iter().map(|e| f(e)).sum();
        let (c, w) = (cpu_now() - c0, w0.elapsed().as_secs_f64());
        r.cpu = r.cpu.max(n / c.max(1e-9));
        r.wall = r.wall.max(n / w.max(1e-9));
    };
    for _ in 0..rounds {
        one(&mut a, &mut ra);
        one(&mut b, &mut rb);
    }
    (ra, rb)
}

fn build_ours(patterns: &[String]) -> Matcher<usize> {
    let mut m = Matcher::new();
    for (i, p) in patterns.iter().enumerate() {
        m.add(i, &parse(p).unwrap_or_else(|e| panic!("rule {i} {p}: {e}")));
    }
    m
}

fn build_quamina(patterns: &[String]) -> quamina::Quamina<usize> {
    let mut q = quamina::Quamina::new();
    for (i, p) in patterns.iter().enumerate() {
        q.add_pattern(i, p)
            .unwrap_or_else(|e| panic!("quamina rule {i} {p}: {e:?}"));
    }
    q
}

/// Synthetic rules for the rule-count table: exact lot numbers, street+side pairs, block prefixes,
/// case-folded streets and coordinate ranges, in a fixed rotation.
fn synthetic_rules(n: usize) -> Vec<String> {
    let streets = [
        "GREENWICH",
        "TURK",
        "CRANLEIGH",
        "17TH",
        "BEACH",
        "MASON",
        "FULTON",
        "MISSION",
    ];
    (0..n)
        .map(|i| {
            let blk = 1 + (i * 7919) % 7999;
            let lot = 1 + (i * 104_729) % 250;
            match i % 10 {
                0..=5 => format!(r#"{{"properties": {{"MAPBLKLOT": ["{blk:04}{lot:03}"]}}}}"#),
                6 | 7 => format!(
                    r#"{{"properties": {{"STREET": ["{}"], "BLOCK_NUM": ["{blk:04}"]}}}}"#,
                    streets[i % streets.len()]
                ),
                8 => format!(r#"{{"properties": {{"BLKLOT": [{{"prefix": "{blk:04}{}"}}]}}}}"#, lot % 10),
                _ => format!(
                    r#"{{"properties": {{"LOT_NUM": [{{"equals-ignore-case": "{lot:03}"}}], "ODD_EVEN": ["E"]}}}}"#
                ),
            }
        })
        .collect()
}

fn main() {
    let a = args();
    let rules_text = std::fs::read_to_string(&a.rules)
        .unwrap_or_else(|e| panic!("read {}: {e}", a.rules.display()));
    let rules: serde_json::Value = serde_json::from_str(&rules_text).expect("rules JSON");
    let events = load_events(a.events.clone(), &a.rules);
    let bytes: usize = events.iter().map(Vec::len).sum();
    println!(
        "{} events ({:.1} MB), best of {} rounds",
        events.len(),
        bytes as f64 / 1e6,
        a.rounds
    );
    println!();
    println!("| rule set | rules | matches | opsloop events/CPU-s | quamina events/CPU-s | ratio | wall-clock ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut all_agree = true;
    let mut worst = f64::MAX;
    for (name, set) in rules.as_object().expect("object") {
        let Some(list) = set.as_array() else { continue };
        if a.only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let mut patterns: Vec<String> = Vec::new();
        for p in list {
            let text = p.to_string();
            // A rule EventBridge itself rejects (e.g. a number with more than six decimals in a
            // numeric match) is left out of both matchers, and said so.
            match parse(&text) {
                Ok(_) => patterns.push(text),
                Err(e) => println!(
                    "<!-- {name}: opsloop rejects {text} as AWS does: {} -->",
                    e.reason()
                ),
            }
        }
        let ours = build_ours(&patterns);
        let q = build_quamina(&patterns);
        // Agreement, event by event.
        let mut disagree = 0usize;
        for e in &events {
            let mut a1 = ours.matches_json(e);
            let mut b1 = q.matches_for_event(e).expect("quamina match");
            a1.sort_unstable();
            b1.sort_unstable();
            if a1 != b1 {
                if disagree < 3 {
                    eprintln!(
                        "{name}: opsloop {a1:?} quamina {b1:?} on {}",
                        String::from_utf8_lossy(e)
                    );
                }
                disagree += 1;
            }
        }
        let (o, qr) = time2(
            &events,
            a.rounds,
            |e| ours.matches_json(e).len(),
            |e| q.matches_for_event(e).map_or(0, |v| v.len()),
        );
        let ratio = o.cpu / qr.cpu;
        worst = worst.min(ratio);
        let agree = disagree == 0 && o.total == qr.total;
        all_agree &= agree;
        println!(
            "| {name} | {} | {}{} | {:.0} | {:.0} | {ratio:.2}× | {:.2}× |",
            patterns.len(),
            o.total,
            if agree {
                String::new()
            } else {
                format!(" (quamina {}, {disagree} events differ)", qr.total)
            },
            o.cpu,
            qr.cpu,
            o.wall / qr.wall,
        );
    }
    println!();
    println!("| synthetic rules | matches | opsloop events/CPU-s | quamina events/CPU-s | ratio | wall-clock ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [1usize, 100, 10_000] {
        if a.only
            .as_ref()
            .is_some_and(|o| *o != format!("synthetic{n}"))
        {
            continue;
        }
        let patterns = synthetic_rules(n);
        let ours = build_ours(&patterns);
        let q = build_quamina(&patterns);
        let (o, qr) = time2(
            &events,
            a.rounds,
            |e| ours.matches_json(e).len(),
            |e| q.matches_for_event(e).map_or(0, |v| v.len()),
        );
        all_agree &= o.total == qr.total;
        println!(
            "| {n} | {}{} | {:.0} | {:.0} | {:.2}× | {:.2}× |",
            o.total,
            if o.total == qr.total {
                String::new()
            } else {
                format!(" (quamina {})", qr.total)
            },
            o.cpu,
            qr.cpu,
            o.cpu / qr.cpu,
            o.wall / qr.wall,
        );
    }
    println!();
    println!(
        "agreement: {}; worst ratio on the citylots sets: {worst:.2}×",
        if all_agree {
            "every event, every set"
        } else {
            "MISMATCHES (see above)"
        }
    );
    if !all_agree {
        std::process::exit(1);
    }
}
