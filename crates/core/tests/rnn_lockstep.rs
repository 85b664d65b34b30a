//! The simple RNN's recurrence split over threads (lock step, by ranges of hidden units)
//! against the same passes on one thread: the same outputs and gradients, bit for bit.

use ndarray::Array3;
use odyssey_core::layers::{BackwardOptions, RnnActivation, RnnConfig, SequenceBatch, SimpleRnn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Everything a forward and backward pass produce, on a pool of `threads`.
fn passes(
    rnn: &SimpleRnn<f32>,
    x: &Array3<f32>,
    lengths: &[usize],
    dy: &Array3<f32>,
    clip: Option<f32>,
    threads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a pool");
    pool.install(|| {
        let mut batch = SequenceBatch::new(x.view());
        batch.lengths = Some(lengths);
        let (out, cache) = rnn.forward(&batch).expect("forward");
        let options = BackwardOptions {
            recurrent_clip: clip,
        };
        let grads = rnn
            .backward(&cache, dy.view(), Some(out.h_n.view()), &options)
            .expect("backward");
        let mut exact: Vec<f32> = Vec::new();
        exact.extend(
            out.y
                .iter()
                .chain(&out.h_n)
                .chain(&grads.dx)
                .chain(&grads.dh0),
        );
        let params = &grads.params;
        exact.extend(
            params
                .weight_ih
                .iter()
                .chain(&params.weight_hh)
                .chain(&params.bias_ih),
        );
        (exact, grads.step_grad_norms.to_vec())
    })
}

#[test]
fn the_split_recurrence_equals_one_thread_bit_for_bit() {
    // 2·B·H² ≥ the parallel threshold, H splits into two halves of whole panels.
    let (batch, time, input, hidden) = (8, 9, 5, 160);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (activation, clip) in [
        (RnnActivation::Tanh, None),
        (RnnActivation::Relu, Some(0.05)),
    ] {
        let config = RnnConfig {
            input_size: input,
            hidden_size: hidden,
            activation,
        };
        let rnn = SimpleRnn::<f32>::new(config, &mut rng).expect("an RNN");
        let x = Array3::from_shape_fn((batch, time, input), |_| rng.gen_range(-1.0..1.0));
        let dy = Array3::from_shape_fn((batch, time, hidden), |_| rng.gen_range(-1.0..1.0));
        let lengths: Vec<usize> = (0..batch).map(|b| time - b % 4).collect();
        let (one, one_norms) = passes(&rnn, &x, &lengths, &dy, clip, 1);
        let (two, two_norms) = passes(&rnn, &x, &lengths, &dy, clip, 2);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&one) == bits(&two),
            "{activation:?}: the split changed a value"
        );
        // The norms sum each step's squares per chunk first: equal up to rounding.
        for (a, b) in one_norms.iter().zip(&two_norms) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "norm {a} vs {b}");
        }
    }
}
