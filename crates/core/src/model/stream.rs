//! [`Stream`]: stateful inference one chunk of time steps at a time.

use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayD};

use super::graph::ModelState;
use super::model::Model;
use super::node::Node;
use super::recurrent_stack::LayerState;
use super::spec::{InputSpec, OpSpec, RecurrentOutput};
use super::value::Value;
use crate::layers::lstm::StepBuffers;
use crate::{Error, Result, Scalar};

/// Stateful streaming inference: feeds a model its input a chunk of time steps
/// at a time (often one), carrying every recurrent layer's state from one call
/// to the next, so that the chunks of a sequence give exactly the outputs of
/// the whole sequence.
#[derive(Debug, Clone, Default)]
pub struct Stream<F> {
    state: Option<ModelState<F>>,
    /// [`Stream::step_into`]'s per-layer buffers, kept from step to step.
    buffers: Vec<StepBuffers<F>>,
}

impl<F: Scalar> Stream<F> {
    pub fn new() -> Self {
        Stream {
            state: None,
            buffers: Vec::new(),
        }
    }

    /// Forgets the carried state: the next chunk starts a new sequence.
    pub fn reset(&mut self) {
        self.state = None;
    }

    /// The state the next chunk starts from; `None` after `reset` (zeros, or a node's `initialState`).
    pub fn state(&self) -> Option<&ModelState<F>> {
        self.state.as_ref()
    }

    /// Continues the next chunk from `state` (see [`super::state::model_state`]).
    pub fn set_state(&mut self, state: ModelState<F>) {
        self.state = Some(state);
    }

    /// The model's output for the next chunk: sequence inputs `[batch, steps, features]`
    /// whose lengths all fill `steps` (token inputs alike); vector inputs as usual.
    /// The batch must stay the same until `reset`.
    pub fn step(&mut self, model: &Model<F>, inputs: Vec<Value<F>>) -> Result<ArrayD<F>> {
        check_streamable(model)?;
        check_full_lengths(&inputs)?;
        if let (Some(batch), Some(first)) = (self.batch(), inputs.first()) {
            if first.batch() != batch {
                return Err(Error::shape(
                    "inputs",
                    format!("a batch of {batch}, as the stream's carried state (reset it to start another batch)"),
                    &first.grad_shape(),
                ));
            }
        }
        let pass = model.forward(inputs, false, 0, self.state.as_ref())?;
        let output = pass.output().float_data("output")?;
        self.state = Some(pass.final_states);
        Ok(output)
    }

    /// One time step of a model with a single sequence input: `x` `[batch, features]`; the
    /// output `[batch, width]` is written into `out`. The same values as [`Stream::step`] on
    /// `[batch, 1, features]`, bit for bit. A model that is a chain of unidirectional LSTM
    /// nodes (not FGR, no `initialState`, not the `states` output) stepping at most four
    /// sequences runs each layer's step in place on buffers kept from call to call (nothing
    /// is allocated once the state exists), its weights split over two threads when that
    /// pays ([`crate::layers::Lstm`]'s `step`); any other model takes [`Stream::step`]'s path.
    pub fn step_into(
        &mut self,
        model: &Model<F>,
        x: &[F],
        batch: usize,
        out: &mut [F],
    ) -> Result<()> {
        let [InputSpec::Sequence { features, .. }] = model.spec().inputs[..] else {
            return Err(Error::invalid(
                "x",
                "a flat step input needs a model with exactly one sequence input",
            ));
        };
        if batch == 0 || x.len() != batch * features {
            return Err(Error::shape(
                "x",
                format!("[{batch}, {features}] ({} values)", batch * features),
                &[x.len()],
            ));
        }
        if !steps_in_place(model, batch) {
            let data =
                Array3::from_shape_vec((batch, 1, features), x.to_vec()).expect("checked length");
            let lengths: Arc<[usize]> = vec![1; batch].into();
            let output = self.step(model, vec![Value::Sequence { data, lengths }])?;
            return copy_output(output.as_slice().expect("a fresh output"), out);
        }
        self.check_batch(batch)?;
        let state = in_place_state(&mut self.state, model, batch);
        self.buffers
            .resize_with(state.iter().map(Vec::len).sum(), StepBuffers::default);
        let mut buffers = self.buffers.iter_mut();
        let mut below: &[F] = x;
        for (node, states) in model.nodes.iter().zip(state.iter_mut()) {
            let Node::Lstm(stack) = node else {
                unreachable!("steps_in_place checked the nodes")
            };
            for (layer, entry) in stack.layers().iter().zip(states.iter_mut()) {
                let LayerState { h, c: Some(c) } = entry else {
                    unreachable!("an LSTM state has a cell")
                };
                let (h, c) = (contiguous(h), contiguous(c));
                let buffers = buffers.next().expect("one per layer");
                layer.step(below, h, c, buffers)?;
                below = h;
            }
        }
        copy_output(below, out)
    }

    /// A step must continue the batch the state was made for.
    fn check_batch(&self, batch: usize) -> Result<()> {
        match self.batch() {
            Some(carried) if carried != batch => Err(Error::shape(
                "inputs",
                format!("a batch of {carried}, as the stream's carried state (reset it to start another batch)"),
                &[batch],
            )),
            _ => Ok(()),
        }
    }

    fn batch(&self) -> Option<usize> {
        self.state
            .as_ref()?
            .iter()
            .flatten()
            .next()
            .map(|s| s.h.nrows())
    }
}

/// Whether [`Stream::step_into`] can step every layer of `model` in place: one sequence
/// input, then unidirectional LSTM nodes each reading the one before, the last one the output.
fn steps_in_place<F: Scalar>(model: &Model<F>, batch: usize) -> bool {
    let spec = model.spec();
    let chain = spec
        .nodes
        .iter()
        .zip(&model.nodes)
        .enumerate()
        .all(|(n, (node, built))| {
            let (OpSpec::Lstm { recurrent, .. }, Node::Lstm(stack)) = (&node.op, built) else {
                return false;
            };
            // Slot n is the input for the first node, node n − 1's output for the others.
            model.node_inputs[n] == [n]
                && !recurrent.bidirectional
                && recurrent.initial_state.is_none()
                && recurrent.output != RecurrentOutput::States
                && stack
                    .layers()
                    .iter()
                    .all(|layer| layer.steps_in_place(batch))
        });
    chain && !spec.nodes.is_empty() && model.output == spec.nodes.len()
}

/// The carried state of a model [`steps_in_place`] accepted, zeros where none is carried yet.
fn in_place_state<'a, F: Scalar>(
    state: &'a mut Option<ModelState<F>>,
    model: &Model<F>,
    batch: usize,
) -> &'a mut ModelState<F> {
    let state = state.get_or_insert_with(Vec::new);
    state.resize_with(model.nodes.len(), Vec::new);
    for (node, states) in model.nodes.iter().zip(state.iter_mut()) {
        if let Node::Lstm(stack) = node {
            if states.len() != stack.layers().len() {
                *states = stack
                    .layers()
                    .iter()
                    .map(|layer| {
                        let zeros = Array2::zeros((batch, layer.config.hidden_size));
                        LayerState {
                            h: zeros.clone(),
                            c: Some(zeros),
                        }
                    })
                    .collect();
            }
        }
    }
    state
}

/// A state array's values, which are always in standard layout.
fn contiguous<F>(array: &mut Array2<F>) -> &mut [F] {
    array.as_slice_mut().expect("states are in standard layout")
}

/// Copies a step's output into the caller's buffer, which must have its size.
fn copy_output<F: Scalar>(output: &[F], out: &mut [F]) -> Result<()> {
    if out.len() != output.len() {
        return Err(Error::shape(
            "out",
            format!("{} values (the step's output)", output.len()),
            &[out.len()],
        ));
    }
    out.copy_from_slice(output);
    Ok(())
}

/// A reverse direction reads the sequence from its end, which a stream has not seen yet.
fn check_streamable<F: Scalar>(model: &Model<F>) -> Result<()> {
    for node in &model.spec().nodes {
        let recurrent = match &node.op {
            OpSpec::Lstm { recurrent, .. }
            | OpSpec::Rnn { recurrent, .. }
            | OpSpec::Gru { recurrent } => recurrent,
            _ => continue,
        };
        if recurrent.bidirectional {
            return Err(Error::invalid(
                &node.name,
                "a bidirectional layer reads each sequence backwards from its end, so it cannot be stepped through time",
            ));
        }
    }
    Ok(())
}

/// Padding inside a chunk would freeze some rows' state mid-stream.
fn check_full_lengths<F: Scalar>(inputs: &[Value<F>]) -> Result<()> {
    for (i, value) in inputs.iter().enumerate() {
        let (time, lengths) = match value {
            Value::Sequence { data, lengths } => (data.dim().1, lengths),
            Value::Tokens { ids, lengths } => (ids.dim().1, lengths),
            Value::Vector(_) => continue,
        };
        if let Some(b) = lengths.iter().position(|&l| l != time) {
            return Err(Error::invalid(
                &format!("inputs[{i}].lengths"),
                format!(
                    "a streamed chunk has no padding: every length must be {time}, got lengths[{b}] = {}",
                    lengths[b]
                ),
            ));
        }
    }
    Ok(())
}
