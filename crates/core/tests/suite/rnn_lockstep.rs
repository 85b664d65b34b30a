//! The simple RNN's recurrence split over threads (by sequences, or by ranges of hidden
//! units in lock step) against the same passes on one thread: the same outputs and
//! gradients, bit for bit, but for the sums the split adds in another order.

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
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
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
        exact.extend(params.weight_ih.iter().chain(&params.weight_hh));
        (
            exact,
            params.bias_ih.to_vec(),
            grads.step_grad_norms.to_vec(),
        )
    })
}

/// Both passes on one thread and on two, for a batch of `batch` sequences of `hidden` units.
/// `bias_exact`: the bias sums keep their order (a split of the units); a split of the
/// sequences sums each part's first.
fn check_split(batch: usize, hidden: usize, bias_exact: bool) {
    let (time, input) = (9, 5);
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
        let (one, one_bias, one_norms) = passes(&rnn, &x, &lengths, &dy, clip, 1);
        let (two, two_bias, two_norms) = passes(&rnn, &x, &lengths, &dy, clip, 2);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&one) == bits(&two),
            "{activation:?}: the split changed a value"
        );
        if bias_exact {
            assert!(bits(&one_bias) == bits(&two_bias), "{activation:?}: bias");
        }
        // The norms sum each step's squares per chunk first: equal up to rounding.
        for (a, b) in one_norms
            .iter()
            .zip(&two_norms)
            .chain(one_bias.iter().zip(&two_bias))
        {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn the_units_split_in_lock_step_equals_one_thread_bit_for_bit() {
    // 2·B·H² ≥ the parallel threshold, H splits into two halves of whole panels, and
    // 8 sequences are too few for two parts of whole micro-kernel tiles.
    check_split(8, 160, true);
}

#[test]
fn the_sequences_split_equals_one_thread_bit_for_bit() {
    // 2·B·H² ≥ the parallel threshold; 20 sequences split 16 + 4 (a part ends in a
    // partial tile).
    check_split(20, 96, false);
}
