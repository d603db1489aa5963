//! Round trips and corruption handling of the raw chunk codec.

use super::*;

fn encode(points: &[Point]) -> (Vec<u8>, ChunkDone) {
    let mut b = ChunkBuilder::new();
    for p in points {
        b.push(*p);
    }
    let done = b.finish();
    (std::mem::take(&mut b.payload), done)
}

fn roundtrip(points: &[Point]) -> Vec<FrameInfo> {
    let (payload, done) = encode(points);
    assert_eq!(done.payload_len as usize, payload.len());
    assert_eq!(done.payload_crc, crc32fast::hash(&payload));
    let frames = parse_table(&done.table, done.n_frames, payload.len()).unwrap();
    let mut out = Vec::new();
    decode_all(&payload, &frames, &mut out).unwrap();
    assert_eq!(out.len(), points.len());
    for (a, b) in out.iter().zip(points) {
        assert_eq!(a.ts_ms, b.ts_ms);
        match (a.sample, b.sample) {
            (
                Sample::Value {
                    value: v1,
                    count: c1,
                },
                Sample::Value {
                    value: v2,
                    count: c2,
                },
            ) => {
                assert_eq!(v1.to_bits(), v2.to_bits());
                assert_eq!(c1.to_bits(), c2.to_bits());
            }
            (x, y) => assert_eq!(x, y),
        }
    }
    frames
}

#[test]
fn plain_values_roundtrip_and_frames_follow_minutes() {
    let t0 = 1_700_000_000_000i64 - 1_700_000_000_000i64 % 60_000;
    let pts: Vec<Point> = (0..5000)
        .map(|i| Point {
            ts_ms: t0 + i * 1000 + (i % 7),
            sample: Sample::Value {
                value: (i % 100) as f64 * 0.5,
                count: 1.0,
            },
        })
        .collect();
    let frames = roundtrip(&pts);
    // 1 point per second: every frame is one whole minute.
    assert!(frames.len() >= 83);
    for f in &frames {
        assert_eq!(f.first_ts.div_euclid(60_000), f.last_ts.div_euclid(60_000));
        assert!(f.all_simple && f.all_capable);
    }
    let total: f64 = frames.iter().map(|f| f.count).sum();
    assert_eq!(total, 5000.0);
}

#[test]
fn mixed_kinds_and_extreme_values_roundtrip() {
    let mut pts = Vec::new();
    let specials = [
        0.0,
        -0.0,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        1e-310,
        -1e300,
        3.25,
    ];
    for i in 0..3000i64 {
        let ts = -5_000_000 + (i / 2) * 37 - (i % 3); // negative, irregular, some equal
        let s = match i % 4 {
            0 => Sample::Value {
                value: specials[(i as usize) % specials.len()],
                count: 1.0,
            },
            1 => Sample::Value {
                value: i as f64,
                count: (i % 5 + 2) as f64,
            },
            2 => Sample::Stats {
                count: 3.0,
                sum: 9.0,
                min: 3.0,
                max: 3.0,
            },
            _ => Sample::Stats {
                count: 2.0,
                sum: 10.0,
                min: 1.0,
                max: 9.0,
            },
        };
        pts.push(Point {
            ts_ms: ts,
            sample: s,
        });
    }
    pts.sort_by_key(|p| p.ts_ms);
    let frames = roundtrip(&pts);
    assert!(frames.iter().all(|f| !f.all_simple && !f.all_capable));
}

#[test]
fn huge_timestamp_jumps_roundtrip() {
    let pts: Vec<Point> = [i64::MIN + 1, -1, 0, 0, 1, 1 << 40, i64::MAX - 1]
        .iter()
        .map(|&t| Point {
            ts_ms: t,
            sample: Sample::Value {
                value: 1.0,
                count: 1.0,
            },
        })
        .collect();
    roundtrip(&pts);
}

#[test]
fn adaptive_layouts_roundtrip_and_pay_off() {
    let t0 = 1_700_000_000_000i64;
    let mut seed = 5u64;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    // Irregular timestamps, two-decimal random walk: fixed-width deltas and decimal values.
    let mut x = 500.0f64;
    let walk: Vec<Point> = (0..4000)
        .map(|i| {
            x += (rnd() % 201) as f64 / 100.0 - 1.0;
            let ts = t0 + i * 86 + (rnd() % 86) as i64;
            Point {
                ts_ms: ts,
                sample: Sample::Value {
                    value: (x * 100.0).round() / 100.0,
                    count: 1.0,
                },
            }
        })
        .collect();
    let frames = roundtrip(&walk);
    assert!(
        frames.iter().all(|f| f.decimal && f.ts_fixed),
        "{:?}",
        frames[0]
    );
    let (payload, _) = encode(&walk);
    assert!(
        payload.len() < walk.len() * 3,
        "{} bytes for {} points",
        payload.len(),
        walk.len()
    );
    // Perfectly regular timestamps cost nothing per point (fixed width 0); integer counters
    // use decimal with d = 0.
    let regular: Vec<Point> = (0..600)
        .map(|i| Point {
            ts_ms: t0 + i * 1000,
            sample: Sample::Value {
                value: (i * 3) as f64,
                count: 1.0,
            },
        })
        .collect();
    let frames = roundtrip(&regular);
    assert!(frames.iter().all(|f| f.decimal && f.ts_fixed));
    let (payload, _) = encode(&regular);
    assert!(payload.len() < 600, "{} bytes", payload.len());
    // Values without a short decimal form, negative zero and NaN stay exact via XOR.
    let odd: Vec<Point> = [0.1 + 0.2, -0.0, f64::NAN, 1.0 / 3.0, 5.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| Point {
            ts_ms: t0 + i as i64,
            sample: Sample::Value {
                value: v,
                count: 1.0,
            },
        })
        .collect();
    let frames = roundtrip(&odd);
    assert!(!frames[0].decimal);
    // decode_simple agrees with decode_frame.
    let (payload, done) = encode(&walk);
    let frames = parse_table(&done.table, done.n_frames, payload.len()).unwrap();
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    for fi in &frames {
        decode_simple(&payload, fi, &mut ts, &mut vals).unwrap();
    }
    assert!(ts
        .iter()
        .zip(&vals)
        .zip(&walk)
        .all(|((t, v), p)| *t == p.ts_ms
            && Sample::Value {
                value: *v,
                count: 1.0
            } == p.sample));
}

#[test]
fn corrupt_payload_is_an_error_not_a_panic() {
    let pts: Vec<Point> = (0..200)
        .map(|i| Point {
            ts_ms: i * 13,
            sample: Sample::Value {
                value: i as f64 * 1.1,
                count: 1.0,
            },
        })
        .collect();
    let (payload, done) = encode(&pts);
    let frames = parse_table(&done.table, done.n_frames, payload.len()).unwrap();
    let mut seed = 1u64;
    for _ in 0..200 {
        let mut p = payload.clone();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let i = (seed >> 33) as usize % p.len();
        p[i] ^= 1 << ((seed >> 20) % 8);
        let cut = (seed >> 40) as usize % p.len();
        let mut out = Vec::new();
        let _ = decode_all(&p[..cut], &frames, &mut out);
        let _ = decode_all(&p, &frames, &mut out);
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        for fi in &frames {
            let _ = decode_simple(&p, fi, &mut ts, &mut vals);
        }
    }
    let mut t = done.table.clone();
    t.truncate(t.len() - 3);
    assert!(parse_table(&t, done.n_frames, payload.len()).is_err());
    assert!(parse_table(&done.table, done.n_frames + 1, payload.len()).is_err());
}
