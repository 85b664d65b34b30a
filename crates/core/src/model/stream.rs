//! [`Stream`]: stateful inference one chunk of time steps at a time.

use ndarray::ArrayD;

use super::graph::ModelState;
use super::model::Model;
use super::spec::OpSpec;
use super::value::Value;
use crate::{Error, Result, Scalar};

/// Stateful streaming inference: feeds a model its input a chunk of time steps
/// at a time (often one), carrying every recurrent layer's state from one call
/// to the next, so that the chunks of a sequence give exactly the outputs of
/// the whole sequence.
#[derive(Debug, Clone, Default)]
pub struct Stream<F> {
    state: Option<ModelState<F>>,
}

impl<F: Scalar> Stream<F> {
    pub fn new() -> Self {
        Stream { state: None }
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

    fn batch(&self) -> Option<usize> {
        self.state
            .as_ref()?
            .iter()
            .flatten()
            .next()
            .map(|s| s.h.nrows())
    }
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
