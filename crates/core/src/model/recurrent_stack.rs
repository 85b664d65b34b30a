//! Stacked and bidirectional recurrent layers (PyTorch's `num_layers` and
//! `bidirectional`), written once for any [`Recurrent`] layer.

use std::marker::PhantomData;

use ndarray::{
    concatenate, s, Array1, Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis,
    CowArray, Ix2, Ix3,
};

use super::sequence_ops::{concat_features, reverse_within_lengths};
use super::spec::{Merge, RecurrentOutput};
use crate::layers::recurrent::Recurrent;
use crate::layers::{BackwardOptions, SequenceBatch};
use crate::{Error, Result, Scalar};

/// The state of one layer in one direction: y `[batch, H]` and, for the LSTM, c `[batch, H]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerState<F> {
    pub h: Array2<F>,
    pub c: Option<Array2<F>>,
}

/// Every entry's state side by side, `[batch, entries · (2)H]`: h then c for
/// each entry, layer-major (the `states` output and the `initialState` layout).
pub fn states_vector<F: Scalar>(states: &[LayerState<F>]) -> Array2<F> {
    let views: Vec<ArrayView2<'_, F>> = states
        .iter()
        .flat_map(|s| std::iter::once(s.h.view()).chain(s.c.as_ref().map(|c| c.view())))
        .collect();
    concatenate(Axis(1), &views).expect("states share the batch axis")
}

/// The inverse of [`states_vector`]: `entries` states of width `h` (with c when `has_cell`).
pub fn split_states<F: Scalar>(
    vector: ArrayView2<'_, F>,
    entries: usize,
    h: usize,
    has_cell: bool,
) -> Vec<LayerState<F>> {
    let mut columns = (0..)
        .step_by(h)
        .map(|start| vector.slice(s![.., start..start + h]).to_owned());
    (0..entries)
        .map(|_| LayerState {
            h: columns.next().expect("the width holds every entry"),
            c: has_cell.then(|| columns.next().expect("the width holds every entry")),
        })
        .collect()
}

/// What a stack hands on: every step, or one vector per sequence.
#[derive(Debug, Clone)]
pub enum StackOutput<F> {
    /// `[batch, time, H']`
    Sequence(Array3<F>),
    /// `[batch, H']`
    Vector(Array2<F>),
}

/// What a forward pass through a stack returns.
pub struct StackForward<F, C> {
    pub output: StackOutput<F>,
    /// The final state of every layer entry.
    pub finals: Vec<LayerState<F>>,
    pub cache: StackCache<C>,
}

pub struct StackCache<C> {
    /// `caches[k * directions + d]`; empty after an inference pass.
    caches: Vec<C>,
    lengths: Vec<usize>,
    time: usize,
    batch: usize,
}

/// Gradients of one backward pass through a stack.
pub struct StackGrads<F> {
    /// ∂J/∂x: `[batch, time, input_size]`; `None` when not asked for.
    pub dx: Option<Array3<F>>,
    /// Parameter gradients, layer-major then direction, each in `ParamSet` order.
    pub params: Vec<ArrayD<F>>,
    /// `[time]` per (layer, direction): the per-step gradient norms.
    pub step_grad_norms: Vec<Array1<F>>,
    /// ∂J/∂(initial state) of every layer entry: dh0 `[batch, H]` (and dc0).
    pub dinitial: Vec<LayerState<F>>,
}

pub struct RecurrentStack<F, L> {
    /// `layers[k * directions + d]`: layer k, direction d (0 forward, 1 reverse).
    layers: Vec<L>,
    element: PhantomData<fn() -> F>,
    directions: usize,
    merge: Merge,
    output: RecurrentOutput,
}

impl<F, L> RecurrentStack<F, L> {
    /// `layers` is layer-major: `[l0, l0_reverse, l1, l1_reverse, ...]`.
    pub fn new(layers: Vec<L>, bidirectional: bool, merge: Merge, output: RecurrentOutput) -> Self {
        RecurrentStack {
            layers,
            element: PhantomData,
            directions: if bidirectional { 2 } else { 1 },
            merge,
            output,
        }
    }

    pub fn layers(&self) -> &[L] {
        &self.layers
    }

    pub fn layers_mut(&mut self) -> &mut [L] {
        &mut self.layers
    }

    /// PyTorch's suffix of layer entry `i`: `_l{k}` or `_l{k}_reverse`.
    pub fn suffix(&self, i: usize) -> String {
        let reverse = if i % self.directions == 1 {
            "_reverse"
        } else {
            ""
        };
        format!("_l{}{reverse}", i / self.directions)
    }
}

impl<F, L> RecurrentStack<F, L> {
    /// Width of what one layer hands to the next, given hidden size `h`.
    pub fn merged_width(&self, h: usize) -> usize {
        match self.merge {
            Merge::Concat => h * self.directions,
            Merge::Sum => h,
        }
    }
}

impl<F: Scalar, L: Recurrent<F>> RecurrentStack<F, L> {
    fn hidden(&self) -> usize {
        self.layers[0].hidden_size()
    }

    /// The stack's initial states from an `initialState` value `[batch, entries · (2)H]`.
    pub fn states_from(
        &self,
        vector: ArrayView2<'_, F>,
        batch: usize,
    ) -> Result<Vec<LayerState<F>>> {
        let has_cell = self.layers[0].has_cell();
        let width = self.layers.len() * self.hidden() * if has_cell { 2 } else { 1 };
        if vector.dim() != (batch, width) {
            return Err(Error::shape(
                "initialState",
                format!("[{batch}, {width}] (the batch of the sequence input)"),
                vector.shape(),
            ));
        }
        Ok(split_states(
            vector,
            self.layers.len(),
            self.hidden(),
            has_cell,
        ))
    }

    fn merge_directions(&self, parts: Vec<Array3<F>>) -> Array3<F> {
        match (self.merge, parts.len()) {
            (_, 1) => parts.into_iter().next().expect("one part"),
            (Merge::Concat, _) => {
                concat_features(&parts.iter().map(|p| p.view()).collect::<Vec<_>>())
            }
            (Merge::Sum, _) => parts.into_iter().reduce(|a, b| a + b).expect("two parts"),
        }
    }

    /// The part of a merged gradient `[batch, time, H']` that belongs to direction `d`.
    fn split_direction<'a>(&self, merged: ArrayView3<'a, F>, d: usize) -> ArrayView3<'a, F> {
        let h = self.hidden();
        match self.merge {
            Merge::Concat => merged.slice_move(s![.., .., d * h..(d + 1) * h]),
            Merge::Sum => merged,
        }
    }

    /// Forward through every layer and direction.
    /// `x`: `[batch, time, input_size]`; `initial`: one state per layer entry, zeros when `None`.
    /// `keep_cache`: false for inference, whose layers then keep nothing for `backward`
    /// (which refuses such a pass).
    pub fn forward(
        &self,
        x: ArrayView3<'_, F>,
        lengths: &[usize],
        initial: Option<&[LayerState<F>]>,
        keep_cache: bool,
    ) -> Result<StackForward<F, L::Cache>> {
        if let Some(states) = initial {
            if states.len() != self.layers.len() {
                return Err(Error::shape(
                    "initialState",
                    format!("[{}] layer states", self.layers.len()),
                    &[states.len()],
                ));
            }
        }
        let (batch, time, _) = x.dim();
        let mut input = CowArray::from(x);
        let mut finals = Vec::with_capacity(self.layers.len());
        let mut caches = Vec::with_capacity(self.layers.len());
        for k in 0..self.layers.len() / self.directions {
            let mut parts = Vec::with_capacity(self.directions);
            for d in 0..self.directions {
                let i = k * self.directions + d;
                let reversed = (d == 1).then(|| reverse_within_lengths(input.view(), lengths));
                let state = initial.map(|s| &s[i]);
                let batch_in = SequenceBatch {
                    x: reversed.as_ref().map_or(input.view(), |r| r.view()),
                    lengths: Some(lengths),
                    h0: state.map(|s| s.h.view()),
                    c0: state.and_then(|s| s.c.as_ref().map(|c| c.view())),
                };
                let out = if keep_cache {
                    let (out, cache) = self.layers[i].forward_sequence(&batch_in)?;
                    caches.push(cache);
                    out
                } else {
                    self.layers[i].infer_sequence(&batch_in)?
                };
                parts.push(if d == 1 {
                    reverse_within_lengths(out.y.view(), lengths)
                } else {
                    out.y
                });
                finals.push(LayerState {
                    h: out.h_n,
                    c: out.c_n,
                });
            }
            input = CowArray::from(self.merge_directions(parts));
        }
        let output = self.select_output(input.into_owned(), &finals);
        let cache = StackCache {
            caches,
            lengths: lengths.to_vec(),
            time,
            batch,
        };
        Ok(StackForward {
            output,
            finals,
            cache,
        })
    }

    fn select_output(&self, top: Array3<F>, finals: &[LayerState<F>]) -> StackOutput<F> {
        match self.output {
            RecurrentOutput::Sequence => StackOutput::Sequence(top),
            RecurrentOutput::Last => {
                let top_finals = &finals[finals.len() - self.directions..];
                let parts: Vec<Array3<F>> = top_finals
                    .iter()
                    .map(|s| s.h.clone().insert_axis(Axis(1)))
                    .collect();
                StackOutput::Vector(self.merge_directions(parts).index_axis_move(Axis(1), 0))
            }
            RecurrentOutput::States => StackOutput::Vector(states_vector(finals)),
        }
    }

    /// Gradients ∂J/∂(final state) of every layer entry implied by a gradient of a vector output.
    fn final_state_grads(&self, dout: ArrayView2<'_, F>) -> Vec<Option<LayerState<F>>> {
        let h = self.hidden();
        let mut grads: Vec<Option<LayerState<F>>> = vec![None; self.layers.len()];
        match self.output {
            RecurrentOutput::Sequence => {}
            RecurrentOutput::Last => {
                let first_top = self.layers.len() - self.directions;
                for d in 0..self.directions {
                    let cols = match self.merge {
                        Merge::Concat => s![.., d * h..(d + 1) * h],
                        Merge::Sum => s![.., 0..h],
                    };
                    grads[first_top + d] = Some(LayerState {
                        h: dout.slice(cols).to_owned(),
                        c: None,
                    });
                }
            }
            RecurrentOutput::States => {
                let has_cell = self.layers[0].has_cell();
                let states = split_states(dout, self.layers.len(), h, has_cell);
                grads = states.into_iter().map(Some).collect();
            }
        }
        grads
    }

    /// Backward through every layer and direction, consuming the pass's cache (each layer
    /// may reuse its own cache's buffers for its gradients, see `backward_sequence_consuming`).
    /// `dout`: gradient of the output, `[batch, time, H']` or `[batch, H']`, read in place.
    /// `input_gradient`: whether anybody reads ∂J/∂x (not for a model input): without it the
    /// first layer skips its δx GEMM.
    pub fn backward(
        &self,
        cache: StackCache<L::Cache>,
        dout: ArrayViewD<'_, F>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<StackGrads<F>> {
        if cache.caches.len() != self.layers.len() {
            return Err(Error::invalid(
                "pass",
                "an inference pass (training = false) keeps nothing to backpropagate through",
            ));
        }
        let lengths = &cache.lengths;
        let shape = dout.shape().to_vec();
        let (mut dseq, dfinals) = match self.output {
            RecurrentOutput::Sequence => {
                let d = dout
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| Error::shape("dOutput", "[batch, time, features]", &shape))?;
                (CowArray::from(d), vec![None; self.layers.len()])
            }
            _ => {
                let d = dout
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| Error::shape("dOutput", "[batch, features]", &shape))?;
                let width = self.merged_width(self.hidden());
                (
                    CowArray::from(Array3::zeros((cache.batch, cache.time, width))),
                    self.final_state_grads(d),
                )
            }
        };
        // Taken one by one as the layers are visited (top first), and dropped once used.
        let mut caches: Vec<Option<L::Cache>> = cache.caches.into_iter().map(Some).collect();
        let mut params: Vec<Vec<ArrayD<F>>> = vec![Vec::new(); self.layers.len()];
        let mut norms = vec![Array1::zeros(cache.time); self.layers.len()];
        let mut dinitial = Vec::with_capacity(self.layers.len());
        let mut dx_below = None;
        for k in (0..self.layers.len() / self.directions).rev() {
            let wanted = k > 0 || input_gradient;
            let mut dx: Option<Array3<F>> = None;
            for d in 0..self.directions {
                let i = k * self.directions + d;
                let mut dy = CowArray::from(self.split_direction(dseq.view(), d));
                if d == 1 {
                    dy = CowArray::from(reverse_within_lengths(dy.view(), lengths));
                }
                let fin = dfinals[i].as_ref();
                let layer_cache = caches[i].take().expect("each layer entry is visited once");
                let g = self.layers[i].backward_sequence_consuming(
                    layer_cache,
                    dy.view(),
                    fin.map(|s| s.h.view()),
                    fin.and_then(|s| s.c.as_ref().map(|c| c.view())),
                    options,
                    wanted,
                )?;
                if wanted {
                    let dx_d = if d == 1 {
                        reverse_within_lengths(g.dx.view(), lengths)
                    } else {
                        g.dx
                    };
                    dx = Some(match dx {
                        Some(acc) => acc + dx_d,
                        None => dx_d,
                    });
                }
                params[i] = g.params;
                norms[i] = g.step_grad_norms;
                dinitial.push((i, LayerState { h: g.dh0, c: g.dc0 }));
            }
            if k == 0 {
                dx_below = dx;
            } else {
                dseq = CowArray::from(dx.expect("at least one direction"));
            }
        }
        // Layers were visited top first; entries are layer-major.
        dinitial.sort_by_key(|(i, _)| *i);
        Ok(StackGrads {
            dx: dx_below,
            params: params.into_iter().flatten().collect(),
            step_grad_norms: norms,
            dinitial: dinitial.into_iter().map(|(_, s)| s).collect(),
        })
    }
}
