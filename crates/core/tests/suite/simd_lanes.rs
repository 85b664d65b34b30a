//! The `f32` layers on this CPU's SIMD kernels (AVX2 eight lanes, NEON four)
//! agree with the portable, gradient-checked `f64` path, at sizes chosen so
//! that every kernel edge runs: hidden sizes with whole vectors and a scalar
//! tail in the cell epilogue (LSTM blocks of 8 units: 21 = 8 + 8 + 5, and
//! 12 = 8 + 4, a block of whole NEON vectors but not of AVX2 ones), a batch
//! of 9 rows (one full 8- or 6-row micro-kernel tile and an edge tile), and
//! a recurrent clip so the vector min/max run. The GRU has the same check in
//! `gru_gradcheck.rs` (H = 19).

use ndarray::{Array2, Array3, ArrayViewD};
use odyssey_core::layers::{
    BackwardOptions, Lstm, LstmConfig, LstmVariant, RnnActivation, RnnConfig, RnnParams,
    SequenceBatch, SimpleRnn,
};
use odyssey_core::ParamSet;
use rand::distributions::Uniform;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::assert_close;

const BATCH: usize = 9;
const TIME: usize = 5;
const INPUT: usize = 7;
const LENGTHS: [usize; BATCH] = [5, 1, 3, 5, 2, 4, 5, 5, 3];

/// Inputs, upstream gradients and the initial state, in f64.
struct Data {
    x: Array3<f64>,
    dy: Array3<f64>,
    h0: Array2<f64>,
    c0: Array2<f64>,
}

impl Data {
    fn new(hidden: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |shape: (usize, usize, usize), scale: f64| {
            Array3::from_shape_fn(shape, |_| rng.sample(Uniform::new(-scale, scale)))
        };
        let x = draw((BATCH, TIME, INPUT), 2.0);
        let dy = draw((BATCH, TIME, hidden), 1.0);
        let h0 = draw((1, BATCH, hidden), 0.5).remove_axis(ndarray::Axis(0));
        let c0 = draw((1, BATCH, hidden), 2.0).remove_axis(ndarray::Axis(0));
        Data { x, dy, h0, c0 }
    }
}

fn narrow<D: ndarray::Dimension>(a: &ndarray::Array<f64, D>) -> ndarray::Array<f32, D> {
    a.mapv(|v| v as f32)
}

fn widen(a: ArrayViewD<'_, f32>) -> Vec<f64> {
    a.iter().map(|&v| f64::from(v)).collect()
}

fn flat(a: ArrayViewD<'_, f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

#[test]
fn lstm_f32_on_simd_lanes_agrees_with_f64() {
    for hidden in [21, 12] {
        for (v, variant) in LstmVariant::ALL.into_iter().enumerate() {
            let config = LstmConfig::new(INPUT, hidden).with_variant(variant);
            let rng = &mut ChaCha8Rng::seed_from_u64(v as u64);
            let lstm64 = Lstm::<f64>::new(config, 1.0, rng).unwrap();
            let lstm32 = Lstm::from_params(config, lstm64.params.map(|w| w as f32)).unwrap();
            let data = Data::new(hidden, 100 + v as u64);
            let (x32, h032, c032, dy32) = (
                narrow(&data.x),
                narrow(&data.h0),
                narrow(&data.c0),
                narrow(&data.dy),
            );
            let what = |name: &str| format!("{variant:?} H {hidden}: {name}");

            let batch64 = SequenceBatch {
                x: data.x.view(),
                lengths: Some(&LENGTHS),
                h0: Some(data.h0.view()),
                c0: Some(data.c0.view()),
            };
            let batch32 = SequenceBatch {
                x: x32.view(),
                lengths: Some(&LENGTHS),
                h0: Some(h032.view()),
                c0: Some(c032.view()),
            };
            let (out64, cache64) = lstm64.forward(&batch64).unwrap();
            let (out32, cache32) = lstm32.forward(&batch32).unwrap();
            for (name, a, b) in [
                ("y", out32.y.view().into_dyn(), out64.y.view().into_dyn()),
                (
                    "h_n",
                    out32.h_n.view().into_dyn(),
                    out64.h_n.view().into_dyn(),
                ),
            ] {
                assert_close(&what(name), widen(a), &flat(b), 1e-5);
            }

            for clip in [None, Some(0.05)] {
                let grads64 = lstm64
                    .backward(
                        &cache64,
                        data.dy.view(),
                        None,
                        None,
                        &BackwardOptions {
                            recurrent_clip: clip,
                        },
                    )
                    .unwrap();
                let grads32 = lstm32
                    .backward(
                        &cache32,
                        dy32.view(),
                        None,
                        None,
                        &BackwardOptions {
                            recurrent_clip: clip.map(|c| c as f32),
                        },
                    )
                    .unwrap();
                let what = |name: &str| what(&format!("{name} (clip {clip:?})"));
                assert_close(
                    &what("dx"),
                    widen(grads32.dx.view().into_dyn()),
                    &flat(grads64.dx.view().into_dyn()),
                    1e-4,
                );
                assert_close(
                    &what("dc0"),
                    widen(grads32.dc0.view().into_dyn()),
                    &flat(grads64.dc0.view().into_dyn()),
                    1e-4,
                );
                for ((name, g32), (_, g64)) in grads32
                    .params
                    .tensors()
                    .into_iter()
                    .zip(grads64.params.tensors())
                {
                    assert_close(&what(name), widen(g32), &flat(g64), 1e-4);
                }
            }
        }
    }
}

#[test]
fn simple_rnn_f32_on_simd_lanes_agrees_with_f64() {
    let hidden = 21;
    for (a, activation) in [RnnActivation::Tanh, RnnActivation::Relu]
        .into_iter()
        .enumerate()
    {
        let config = RnnConfig {
            input_size: INPUT,
            hidden_size: hidden,
            activation,
        };
        let rnn64 = SimpleRnn::<f64>::new(config, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let p = &rnn64.params;
        let rnn32 = SimpleRnn::from_params(
            config,
            RnnParams {
                weight_ih: narrow(&p.weight_ih),
                weight_hh: narrow(&p.weight_hh),
                bias_ih: narrow(&p.bias_ih),
                bias_hh: narrow(&p.bias_hh),
            },
        )
        .unwrap();
        let data = Data::new(hidden, 200 + a as u64);
        let (x32, h032, dy32) = (narrow(&data.x), narrow(&data.h0), narrow(&data.dy));
        let batch64 = SequenceBatch {
            x: data.x.view(),
            lengths: Some(&LENGTHS),
            h0: Some(data.h0.view()),
            c0: None,
        };
        let batch32 = SequenceBatch {
            x: x32.view(),
            lengths: Some(&LENGTHS),
            h0: Some(h032.view()),
            c0: None,
        };
        let (out64, cache64) = rnn64.forward(&batch64).unwrap();
        let (out32, cache32) = rnn32.forward(&batch32).unwrap();
        let what = |name: &str| format!("{activation:?}: {name}");
        assert_close(
            &what("y"),
            widen(out32.y.view().into_dyn()),
            &flat(out64.y.view().into_dyn()),
            1e-5,
        );
        let options = BackwardOptions::default();
        let grads64 = rnn64
            .backward(&cache64, data.dy.view(), None, &options)
            .unwrap();
        let grads32 = rnn32
            .backward(&cache32, dy32.view(), None, &BackwardOptions::default())
            .unwrap();
        assert_close(
            &what("dx"),
            widen(grads32.dx.view().into_dyn()),
            &flat(grads64.dx.view().into_dyn()),
            1e-4,
        );
        for ((name, g32), (_, g64)) in grads32
            .params
            .tensors()
            .into_iter()
            .zip(grads64.params.tensors())
        {
            assert_close(&what(name), widen(g32), &flat(g64), 1e-4);
        }
    }
}
