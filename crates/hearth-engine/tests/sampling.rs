//! Sampler behaviour through the public API.
#![allow(clippy::unwrap_used)]

use hearth_engine::{logprob_of, top_logprobs, Sampler, SamplingParams};

fn sampler(p: SamplingParams) -> Sampler {
    Sampler::new(p).expect("valid sampling params")
}

fn seeded(temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature,
        seed: Some(seed),
        ..Default::default()
    }
}

/// A pseudo-random logit vector (deterministic).
fn logits(n: usize, salt: u64) -> Vec<f32> {
    let mut rng = hearth_engine::rng::Rng::seeded(salt);
    (0..n)
        .map(|_| (rng.next_f64() * 8.0 - 4.0) as f32)
        .collect()
}

#[test]
fn default_is_greedy_and_valid() {
    let p = SamplingParams::default();
    assert!(p.is_greedy());
    p.validate().unwrap();
    assert_eq!(p.penalty_last_n, 64);
}

#[test]
fn greedy_picks_argmax_lowest_id_on_ties() {
    let mut s = sampler(SamplingParams::default());
    assert_eq!(s.sample(&mut [0.1, 2.0, -1.0, 1.9], &[]), 1);
    assert_eq!(s.sample(&mut [0.1, 2.0, 2.0, 1.9], &[]), 1);
    assert_eq!(s.sample(&mut [5.0, 5.0], &[]), 0);
    for salt in 0..20 {
        let mut l = logits(1000, salt);
        let want = l
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
            .0 as u32;
        assert_eq!(s.sample(&mut l, &[]), want);
    }
}

#[test]
fn nan_and_inf_logits_do_not_panic() {
    for p in [SamplingParams::default(), seeded(1.0, 3)] {
        let mut s = sampler(p);
        assert_eq!(s.sample(&mut [f32::NAN, 1.0, f32::NAN], &[]), 1);
        let all_nan = s.sample(&mut [f32::NAN; 4], &[]);
        assert!(all_nan < 4);
        assert_eq!(s.sample(&mut [0.0, f32::INFINITY, 3.0], &[]), 1);
        let mut neg = [f32::NEG_INFINITY; 3];
        assert!(s.sample(&mut neg, &[]) < 3);
        assert_eq!(s.sample(&mut [], &[]), 0);
    }
    let mut s = sampler(SamplingParams {
        temperature: 0.7,
        top_k: 3,
        top_p: 0.9,
        min_p: 0.05,
        seed: Some(1),
        ..Default::default()
    });
    let mut l = vec![f32::NAN, 1.0, 2.0, f32::INFINITY, f32::NEG_INFINITY, 0.5];
    assert_eq!(s.sample(&mut l, &[]), 3);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let p = SamplingParams {
        temperature: 1.3,
        top_k: 50,
        top_p: 0.95,
        min_p: 0.01,
        repetition_penalty: 1.1,
        seed: Some(42),
        ..Default::default()
    };
    let draw = |p: &SamplingParams| {
        let mut s = sampler(p.clone());
        let mut history = vec![1u32, 2, 3];
        for step in 0..200 {
            let mut l = logits(500, step);
            let id = s.sample(&mut l, &history);
            history.push(id);
        }
        history
    };
    let a = draw(&p);
    assert_eq!(a, draw(&p));
    let b = draw(&SamplingParams {
        seed: Some(43),
        ..p.clone()
    });
    assert_ne!(a, b);
    // Not degenerate: many different tokens.
    let mut uniq = a.clone();
    uniq.sort();
    uniq.dedup();
    assert!(uniq.len() > 50, "{}", uniq.len());
}

#[test]
fn top_k_one_equals_greedy() {
    let mut g = sampler(SamplingParams::default());
    let mut s = sampler(SamplingParams {
        top_k: 1,
        ..seeded(5.0, 7)
    });
    for salt in 0..200 {
        let l = logits(300, salt);
        assert_eq!(s.sample(&mut l.clone(), &[]), g.sample(&mut l.clone(), &[]));
    }
}

#[test]
fn tiny_top_p_equals_greedy() {
    let mut g = sampler(SamplingParams::default());
    let mut s = sampler(SamplingParams {
        top_p: 1e-6,
        ..seeded(5.0, 8)
    });
    for salt in 0..200 {
        let l = logits(300, salt);
        assert_eq!(s.sample(&mut l.clone(), &[]), g.sample(&mut l.clone(), &[]));
    }
}

#[test]
fn top_k_restricts_to_k_best() {
    let mut s = sampler(SamplingParams {
        top_k: 2,
        ..seeded(10.0, 9)
    });
    let mut seen = [0usize; 5];
    for _ in 0..2000 {
        let id = s.sample(&mut [1.0, 3.0, 0.0, 2.9, -1.0], &[]);
        seen[id as usize] += 1;
    }
    assert_eq!(seen[0] + seen[2] + seen[4], 0, "{seen:?}");
    assert!(seen[1] > 500 && seen[3] > 500, "{seen:?}");
}

#[test]
fn top_p_keeps_nucleus() {
    // probs ~ [0.5, 0.3, 0.2]: top_p 0.7 keeps exactly the first two.
    let l = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
    let mut s = sampler(SamplingParams {
        top_p: 0.7,
        ..seeded(1.0, 10)
    });
    let mut seen = [0usize; 3];
    for _ in 0..5000 {
        seen[s.sample(&mut l.clone(), &[]) as usize] += 1;
    }
    assert_eq!(seen[2], 0, "{seen:?}");
    assert!(seen[1] > 1500, "{seen:?}");
}

#[test]
fn min_p_filters() {
    // probs 0.6, 0.3, 0.07, 0.03; min_p 0.1 -> threshold 0.06 keeps ids 0..=2.
    let probs = [0.6f32, 0.3, 0.07, 0.03];
    let l: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
    let mut s = sampler(SamplingParams {
        min_p: 0.1,
        ..seeded(1.0, 11)
    });
    let mut seen = [0usize; 4];
    for _ in 0..20_000 {
        seen[s.sample(&mut l.clone(), &[]) as usize] += 1;
    }
    assert_eq!(seen[3], 0, "{seen:?}");
    assert!(seen[2] > 800, "{seen:?}");
    // min_p = 1 keeps only the best.
    let mut s = sampler(SamplingParams {
        min_p: 1.0,
        ..seeded(3.0, 12)
    });
    for _ in 0..100 {
        assert_eq!(s.sample(&mut l.clone(), &[]), 0);
    }
}

#[test]
fn repetition_penalty_changes_argmax() {
    let base = [2.0f32, 1.9, -1.0];
    let mut g = sampler(SamplingParams::default());
    assert_eq!(g.sample(&mut base.clone(), &[0, 0]), 0);
    let mut s = sampler(SamplingParams {
        repetition_penalty: 1.2,
        ..Default::default()
    });
    let mut l = base;
    assert_eq!(s.sample(&mut l, &[0, 2]), 1);
    // Positive logit divided, negative multiplied; unpenalised untouched.
    assert!((l[0] - 2.0 / 1.2).abs() < 1e-6);
    assert_eq!(l[1], 1.9);
    assert!((l[2] + 1.2).abs() < 1e-6);
}

#[test]
fn frequency_and_presence_penalties() {
    let base = [2.0f32, 1.5, 1.0];
    // Frequency: id 0 seen 3 times, id 1 once: 2.0 - 3*0.3 = 1.1 < 1.5 - 0.3 = 1.2.
    let mut s = sampler(SamplingParams {
        frequency_penalty: 0.3,
        ..Default::default()
    });
    let mut l = base;
    assert_eq!(s.sample(&mut l, &[0, 0, 1, 0]), 1);
    assert!((l[0] - 1.1).abs() < 1e-6 && (l[1] - 1.2).abs() < 1e-6 && l[2] == 1.0);
    // Presence counts once: 2.0 - 1.0 = 1.0 ties with id 2 (1.0): lowest id wins.
    let mut s = sampler(SamplingParams {
        presence_penalty: 1.0,
        ..Default::default()
    });
    assert_eq!(s.sample(&mut base.clone(), &[0, 0, 1]), 0);
    let mut s = sampler(SamplingParams {
        presence_penalty: 1.5,
        ..Default::default()
    });
    assert_eq!(s.sample(&mut base.clone(), &[0, 0, 1]), 2);
    // Negative penalties encourage repetition.
    let mut s = sampler(SamplingParams {
        presence_penalty: -2.0,
        ..Default::default()
    });
    assert_eq!(s.sample(&mut base.clone(), &[2]), 2);
}

#[test]
fn penalty_window() {
    let base = [2.0f32, 1.9];
    let p = SamplingParams {
        presence_penalty: 1.0,
        penalty_last_n: 2,
        ..Default::default()
    };
    // id 0 is outside the last-2 window.
    assert_eq!(sampler(p.clone()).sample(&mut base.clone(), &[0, 1, 1]), 0);
    assert_eq!(sampler(p.clone()).sample(&mut base.clone(), &[1, 0, 0]), 1);
    let off = SamplingParams {
        penalty_last_n: 0,
        ..p.clone()
    };
    assert_eq!(sampler(off).sample(&mut base.clone(), &[0, 0]), 0);
    let whole = SamplingParams {
        penalty_last_n: usize::MAX,
        ..p
    };
    // The whole history reaches id 0 (id 7 is outside the vocabulary: ignored).
    assert_eq!(sampler(whole).sample(&mut base.clone(), &[0, 7, 7, 7]), 1);
}

#[test]
fn temperature_one_matches_distribution() {
    let probs = [0.1f64, 0.2, 0.3, 0.4];
    // Offset the logits: the softmax must not depend on it.
    let l: Vec<f32> = probs.iter().map(|p| (p.ln() + 3.0) as f32).collect();
    let mut s = sampler(seeded(1.0, 2024));
    let n = 20_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[s.sample(&mut l.clone(), &[]) as usize] += 1;
    }
    let chi2: f64 = counts
        .iter()
        .zip(probs)
        .map(|(&c, p)| {
            let e = p * n as f64;
            (c as f64 - e).powi(2) / e
        })
        .sum();
    // 3 degrees of freedom: p = 0.001 at 16.27.
    assert!(chi2 < 16.27, "chi2 = {chi2}, counts = {counts:?}");
}

#[test]
fn temperature_sharpens_and_flattens() {
    let l = [1.0f32, 0.0];
    let count0 = |t: f32| {
        let mut s = sampler(seeded(t, 77));
        (0..10_000)
            .filter(|_| s.sample(&mut l.clone(), &[]) == 0)
            .count()
    };
    // p0 at T: 1/(1+e^{-1/T}): T=0.25 -> 0.982, T=1 -> 0.731, T=100 -> ~0.502.
    let (a, b, c) = (count0(0.25), count0(1.0), count0(100.0));
    assert!(a > 9700, "{a}");
    assert!((7000..7600).contains(&b), "{b}");
    assert!((4800..5200).contains(&c), "{c}");
}

#[test]
fn validate_names_the_field() {
    let cases: Vec<(SamplingParams, &str)> = vec![
        (
            SamplingParams {
                temperature: -0.1,
                ..Default::default()
            },
            "temperature",
        ),
        (
            SamplingParams {
                temperature: f32::NAN,
                ..Default::default()
            },
            "temperature",
        ),
        (
            SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
            "top_p",
        ),
        (
            SamplingParams {
                top_p: 1.5,
                ..Default::default()
            },
            "top_p",
        ),
        (
            SamplingParams {
                top_p: f32::NAN,
                ..Default::default()
            },
            "top_p",
        ),
        (
            SamplingParams {
                min_p: -0.5,
                ..Default::default()
            },
            "min_p",
        ),
        (
            SamplingParams {
                min_p: 1.01,
                ..Default::default()
            },
            "min_p",
        ),
        (
            SamplingParams {
                repetition_penalty: 0.0,
                ..Default::default()
            },
            "repetition_penalty",
        ),
        (
            SamplingParams {
                frequency_penalty: 2.5,
                ..Default::default()
            },
            "frequency_penalty",
        ),
        (
            SamplingParams {
                presence_penalty: -3.0,
                ..Default::default()
            },
            "presence_penalty",
        ),
        (
            SamplingParams {
                presence_penalty: f32::NAN,
                ..Default::default()
            },
            "presence_penalty",
        ),
    ];
    for (p, field) in cases {
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
        let err = Sampler::new(p).unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn logprobs() {
    let l = [1.0f32, 2.0, 3.0, 3.0, f32::NAN];
    let z: f64 = [1.0f64, 2.0, 3.0, 3.0].iter().map(|x| x.exp()).sum();
    let lp = |x: f64| (x - z.ln()) as f32;
    assert!((logprob_of(&l, 0) - lp(1.0)).abs() < 1e-6);
    assert!((logprob_of(&l, 2) - lp(3.0)).abs() < 1e-6);
    assert_eq!(logprob_of(&l, 4), f32::NEG_INFINITY);
    assert_eq!(logprob_of(&l, 99), f32::NEG_INFINITY);

    let top = top_logprobs(&l, 3);
    assert_eq!(
        top.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![2, 3, 1],
        "ties by lower id"
    );
    assert!((top[0].1 - lp(3.0)).abs() < 1e-6);
    assert!((top[2].1 - lp(2.0)).abs() < 1e-6);
    assert_eq!(top_logprobs(&l, 10).len(), 4, "NaN skipped");
    assert!(top_logprobs(&l, 0).is_empty());
    assert!(top_logprobs(&[], 5).is_empty());

    // Agrees with a full sort on a big vocabulary; probabilities sum to 1.
    let big = logits(50_000, 5);
    let top = top_logprobs(&big, 20);
    let mut all: Vec<(u32, f32)> = big
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for (t, a) in top.iter().zip(&all) {
        assert_eq!(t.0, a.0);
        assert!((t.1 - logprob_of(&big, a.0)).abs() < 1e-5);
    }
    let small = &big[..2000];
    let total: f64 = (0..small.len() as u32)
        .map(|i| f64::from(logprob_of(small, i)).exp())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
}
