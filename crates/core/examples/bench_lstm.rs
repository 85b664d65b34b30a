//! CPU benchmark of the recurrent layers (the performance issue's suite).
//!
//! Training step = forward + MSE against a fixed target `[B, T, H]` + full BPTT
//! + one plain SGD update, f32, one layer returning every step.
//!
//! ```text
//! cargo run --release -p odyssey-core --example bench_lstm [-- [--reps N] [NAME_FILTER...]]
//! ```
//!
//! Each case runs warm-up iterations and then `--reps` timed repetitions
//! (default 7, at least 5); the table reports the median and the fastest
//! wall time, the median CPU time of all threads (Linux; on a busy machine
//! `cpu / threads` is closer to what the code would take alone), GFLOP/s
//! from the median, and the share of the sgemm peak measured in the same run
//! (cases `sgemm*`). Threads: rayon's global pool (`RAYON_NUM_THREADS` or one
//! per core).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ndarray::{Array2, Array3, ArrayView2, ArrayViewMut2};
use odyssey_core::alloc::RecyclingAllocator;
use odyssey_core::layers::{
    BackwardOptions, Lstm, LstmConfig, RnnActivation, RnnConfig, RnnParams, SequenceBatch,
    SimpleRnn,
};
use odyssey_core::loss::mse;
use odyssey_core::optim::{Optimizer, Sgd, SgdConfig};
use odyssey_core::ParamSet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// As the Node addon: freed training buffers are reused, not faulted in afresh every step.
#[global_allocator]
static ALLOCATOR: RecyclingAllocator = RecyclingAllocator::new();

const LEARNING_RATE: f64 = 1e-3;

/// `[batch, time, input, hidden]`
type Shape = [usize; 4];

const S1: Shape = [32, 50, 64, 128];
const S2: Shape = [64, 100, 128, 256];
const S3: Shape = [64, 100, 512, 512];

/// Streaming: one sequence, one step per call.
const STREAM: Shape = [1, 1, 128, 256];
/// Steps a streaming case runs per timed repetition (the table shows the time per step).
const STREAM_STEPS: usize = 1000;

fn random_array3(rng: &mut ChaCha8Rng, [b, t, f]: [usize; 3]) -> Array3<f32> {
    Array3::from_shape_simple_fn((b, t, f), || rng.gen_range(-1.0..1.0))
}

fn random_array2(rng: &mut ChaCha8Rng, (rows, cols): (usize, usize)) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || rng.gen_range(-1.0..1.0))
}

/// `[B, T, H]` as `[B·T, H]`.
fn flatten_time(a: &Array3<f32>) -> ArrayView2<'_, f32> {
    let (b, t, h) = a.dim();
    a.view()
        .into_shape_with_order((b * t, h))
        .expect("standard layout")
}

/// ∂L/∂y of the MSE against `target`, both `[B, T, H]`.
fn mse_gradient(y: &Array3<f32>, target: &Array3<f32>) -> Array3<f32> {
    let (b, t, h) = y.dim();
    let (_, grad) = mse(flatten_time(y), flatten_time(target), None).expect("finite values");
    grad.into_shape_with_order((b, t, h))
        .expect("same element count")
}

fn sgd_update<P: ParamSet<f32>>(sgd: &mut Sgd<f32>, params: &mut P, grads: &P) {
    let mut params: Vec<_> = params.tensors_mut().into_iter().map(|(_, t)| t).collect();
    let grads: Vec<_> = grads.tensors().into_iter().map(|(_, t)| t).collect();
    sgd.step(&mut params, &grads, LEARNING_RATE)
        .expect("matching tensors");
}

/// A prepared workload: `run` is one repetition, `flops` its floating-point operations.
struct Case {
    name: String,
    flops: f64,
    /// Divides the repetition time (e.g. steps per streaming repetition).
    per_rep: usize,
    run: Box<dyn FnMut()>,
}

/// FLOPs of one LSTM forward pass: 2·T·B·4H·(X + H).
fn lstm_forward_flops([b, t, x, h]: Shape) -> f64 {
    2.0 * (t * b * 4 * h * (x + h)) as f64
}

/// What an LSTM case times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Forward, MSE gradient, backward, SGD update.
    Train,
    /// The forward pass that keeps the backward cache (`Lstm::forward`).
    Forward,
    /// The inference pass (`Lstm::infer`, what predict and streaming run).
    Infer,
}

fn lstm_case(name: &str, shape: Shape, peepholes: bool, pass: Pass) -> Case {
    let [b, t, x, h] = shape;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let config = LstmConfig::new(x, h).with_peepholes(peepholes);
    let mut lstm = Lstm::<f32>::new(config, 1.0, &mut rng).expect("valid config");
    let input = random_array3(&mut rng, [b, t, x]);
    let target = random_array3(&mut rng, [b, t, h]);
    let mut sgd = Sgd::new(SgdConfig::default()).expect("valid config");
    let run: Box<dyn FnMut()> = match pass {
        Pass::Train => Box::new(move || {
            let (out, cache) = lstm
                .forward(&SequenceBatch::new(input.view()))
                .expect("valid batch");
            let dy = mse_gradient(&out.y, &target);
            // As a model's training step: the cache is consumed (δ written over its gates) and
            // the input gradient, which nobody reads for a first layer, is not computed.
            let grads = lstm
                .backward_consuming(
                    cache,
                    dy.view(),
                    None,
                    None,
                    &BackwardOptions::default(),
                    false,
                )
                .expect("valid gradients");
            sgd_update(&mut sgd, &mut lstm.params, &grads.params);
        }),
        Pass::Forward => Box::new(move || {
            black_box(
                lstm.forward(&SequenceBatch::new(input.view()))
                    .expect("valid batch"),
            );
        }),
        Pass::Infer => Box::new(move || {
            black_box(
                lstm.infer(&SequenceBatch::new(input.view()))
                    .expect("valid batch"),
            );
        }),
    };
    let passes = if pass == Pass::Train { 3.0 } else { 1.0 };
    Case {
        name: name.to_string(),
        flops: passes * lstm_forward_flops(shape),
        per_rep: 1,
        run,
    }
}

/// Inference one step per call, the state carried from call to call (`Pass::Forward` or `Pass::Infer`).
fn lstm_stream_case(name: &str, pass: Pass) -> Case {
    let [b, _, x, h] = STREAM;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let config = LstmConfig::new(x, h).with_peepholes(false);
    let lstm = Lstm::<f32>::new(config, 1.0, &mut rng).expect("valid config");
    let inputs: Vec<Array3<f32>> = (0..STREAM_STEPS)
        .map(|_| random_array3(&mut rng, [b, 1, x]))
        .collect();
    let mut h_state = Array2::<f32>::zeros((b, h));
    let mut c_state = Array2::<f32>::zeros((b, h));
    let run = Box::new(move || {
        for input in &inputs {
            let batch = SequenceBatch {
                x: input.view(),
                lengths: None,
                h0: Some(h_state.view()),
                c0: Some(c_state.view()),
            };
            let out = match pass {
                Pass::Infer => lstm.infer(&batch),
                _ => lstm.forward(&batch).map(|(out, _)| out),
            }
            .expect("valid batch");
            h_state = out.h_n;
            c_state = out.c_n.expect("LSTM has a cell state");
        }
    });
    Case {
        name: name.to_string(),
        flops: STREAM_STEPS as f64 * lstm_forward_flops(STREAM),
        per_rep: STREAM_STEPS,
        run,
    }
}

fn rnn_train_case(name: &str, shape: Shape) -> Case {
    let [b, t, x, h] = shape;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let config = RnnConfig {
        input_size: x,
        hidden_size: h,
        activation: RnnActivation::Tanh,
    };
    let mut rnn = SimpleRnn::<f32>::new(config, &mut rng).expect("valid config");
    let input = random_array3(&mut rng, [b, t, x]);
    let target = random_array3(&mut rng, [b, t, h]);
    let mut sgd = Sgd::new(SgdConfig::default()).expect("valid config");
    let run = Box::new(move || {
        let (out, cache) = rnn
            .forward(&SequenceBatch::new(input.view()))
            .expect("valid batch");
        let dy = mse_gradient(&out.y, &target);
        let grads = rnn
            .backward(&cache, dy.view(), None, &BackwardOptions::default())
            .expect("valid gradients");
        sgd_update::<RnnParams<f32>>(&mut sgd, &mut rnn.params, &grads.params);
    });
    Case {
        name: name.to_string(),
        flops: 3.0 * 2.0 * (t * b * h * (x + h)) as f64,
        per_rep: 1,
        run,
    }
}

/// Which GEMM a peak-measuring case calls.
#[derive(Clone, Copy)]
enum Gemm {
    /// ndarray's `general_mat_mul` (matrixmultiply, one thread).
    Matrixmultiply,
    /// `odyssey_core::kernels::gemm` (this crate's kernels, every thread).
    Odyssey,
}

/// C ← A·B for square `n`-matrices.
fn sgemm_case(name: &str, n: usize, gemm: Gemm) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let a = random_array2(&mut rng, (n, n));
    let b = random_array2(&mut rng, (n, n));
    let mut c = Array2::<f32>::zeros((n, n));
    let run = Box::new(move || {
        let mut out: ArrayViewMut2<'_, f32> = c.view_mut();
        match gemm {
            Gemm::Matrixmultiply => ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut out),
            Gemm::Odyssey => odyssey_core::kernels::gemm(a.view(), b.view(), out, false, None),
        }
        black_box(&c);
    });
    Case {
        name: name.to_string(),
        flops: 2.0 * (n * n * n) as f64,
        per_rep: 1,
        run,
    }
}

fn all_cases() -> Vec<Box<dyn Fn() -> Case>> {
    vec![
        Box::new(|| sgemm_case("sgemm 2048^3 matrixmultiply", 2048, Gemm::Matrixmultiply)),
        Box::new(|| sgemm_case("sgemm 2048^3 odyssey", 2048, Gemm::Odyssey)),
        Box::new(|| sgemm_case("sgemm 512^3 matrixmultiply", 512, Gemm::Matrixmultiply)),
        Box::new(|| sgemm_case("sgemm 512^3 odyssey", 512, Gemm::Odyssey)),
        Box::new(|| lstm_case("lstm train S1", S1, false, Pass::Train)),
        Box::new(|| lstm_case("lstm train S1 peepholes", S1, true, Pass::Train)),
        Box::new(|| lstm_case("lstm train S2", S2, false, Pass::Train)),
        Box::new(|| lstm_case("lstm train S2 peepholes", S2, true, Pass::Train)),
        Box::new(|| lstm_case("lstm train S3", S3, false, Pass::Train)),
        Box::new(|| lstm_case("lstm forward S2", S2, false, Pass::Forward)),
        Box::new(|| lstm_case("lstm infer S2", S2, false, Pass::Infer)),
        Box::new(|| lstm_case("lstm infer S3", S3, false, Pass::Infer)),
        Box::new(|| lstm_stream_case("lstm stream forward B1 X128 H256", Pass::Forward)),
        Box::new(|| lstm_stream_case("lstm stream infer B1 X128 H256", Pass::Infer)),
        Box::new(|| rnn_train_case("rnn train S2", S2)),
    ]
}

/// CPU time consumed so far by all threads of this process (Linux), in nanoseconds.
/// On a machine shared with other work it shows what wall-clock time hides.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Per repetition after warm-up: median and fastest wall time, median CPU time (all threads).
struct Timing {
    median: Duration,
    min: Duration,
    cpu: Option<Duration>,
}

fn measure(case: &mut Case, reps: usize) -> Timing {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(300) {
        (case.run)();
    }
    let per_rep = case.per_rep as u32;
    let mut wall = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (start, cpu_start) = (Instant::now(), process_cpu_ns());
        (case.run)();
        wall.push(start.elapsed() / per_rep);
        if let (Some(begin), Some(end)) = (cpu_start, process_cpu_ns()) {
            cpu.push(Duration::from_nanos(end.saturating_sub(begin)) / per_rep);
        }
    }
    wall.sort();
    cpu.sort();
    Timing {
        median: wall[reps / 2],
        min: wall[0],
        cpu: (cpu.len() == reps).then(|| cpu[reps / 2]),
    }
}

fn format_time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1e3 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1e3)
    }
}

struct Options {
    reps: usize,
    filters: Vec<String>,
}

fn parse_args() -> Options {
    let mut reps = 7;
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--reps" {
            let value = args.next().and_then(|v| v.parse().ok());
            reps = value.expect("--reps takes a number");
        } else if arg != "--bench" {
            filters.push(arg);
        }
    }
    Options {
        reps: reps.max(5),
        filters,
    }
}

fn main() {
    let options = parse_args();
    println!(
        "threads: {}, repetitions: {} (median, min after warm-up)",
        rayon::current_num_threads(),
        options.reps
    );
    println!(
        "{:<34} {:>11} {:>11} {:>11} {:>9} {:>7}",
        "case", "median", "min", "cpu", "GFLOP/s", "% peak"
    );
    let mut peak: Option<f64> = None;
    for make in all_cases() {
        let mut case = make();
        if !options.filters.is_empty()
            && !options
                .filters
                .iter()
                .any(|f| case.name.contains(f.as_str()))
        {
            continue;
        }
        let Timing { median, min, cpu } = measure(&mut case, options.reps);
        let per_call_flops = case.flops / case.per_rep as f64;
        let gflops = per_call_flops / median.as_secs_f64() / 1e9;
        if case.name.starts_with("sgemm") {
            peak = Some(peak.map_or(gflops, |p| p.max(gflops)));
        }
        let share = peak.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * gflops / p));
        println!(
            "{:<34} {:>11} {:>11} {:>11} {:>9.1} {:>7}",
            case.name,
            format_time(median),
            format_time(min),
            cpu.map_or("-".to_string(), format_time),
            gflops,
            share
        );
    }
}
