//! Evaluating a [`Model`]'s graph: forward runs the nodes in topological
//! order; backward walks them in reverse, summing the gradient each value
//! receives from its consumers.

use ndarray::{Array1, ArrayD};

use super::model::{prefix, Model};
use super::node::{ForwardMode, Node, NodeCache};
use super::recurrent_stack::LayerState;
use super::spec::InputSpec;
use super::value::Value;
use crate::layers::BackwardOptions;
use crate::{Error, Result, Scalar};

/// Everything one forward pass produced.
pub struct ForwardPass<F> {
    /// One value per slot: the inputs, then every node's output (the output alone after
    /// [`ForwardPass::keep_only_output`]).
    pub values: Vec<Value<F>>,
    caches: Vec<NodeCache<F>>,
    /// Final states of each node's recurrent layer entries (empty for other nodes).
    pub final_states: Vec<Vec<LayerState<F>>>,
}

impl<F> ForwardPass<F> {
    pub fn output(&self) -> &Value<F> {
        self.values.last().expect("a model has at least one node")
    }

    /// The output, moved out of the pass.
    pub fn into_output(mut self) -> Value<F> {
        self.values.pop().expect("a model has at least one node")
    }

    /// Drops every value but the output. Backward reads the nodes' caches, never the values, so
    /// a training step frees them before the loss and its gradient are computed: the model's
    /// inputs (a `trainStep`'s copy of x, 3 MiB at S2) and every intermediate output.
    pub fn keep_only_output(&mut self) {
        let output = self.values.len() - 1;
        self.values.drain(..output);
    }
}

/// The recurrent state of a whole model: per node, per layer entry.
pub type ModelState<F> = Vec<Vec<LayerState<F>>>;

/// Gradients of one backward pass.
pub struct Gradients<F> {
    /// Aligned with [`Model::trainable_tensors_mut`].
    pub params: Vec<ArrayD<F>>,
    /// `(node name, layer entry suffix, [time] norms)` for every recurrent layer entry.
    pub step_grad_norms: Vec<(String, String, Array1<F>)>,
}

impl<F: Scalar> Model<F> {
    /// Checks the model inputs against the spec: count, kinds, widths, one batch size.
    fn check_inputs(&self, inputs: &[Value<F>]) -> Result<()> {
        if inputs.len() != self.spec.inputs.len() {
            return Err(Error::shape(
                "inputs",
                format!("{} inputs", self.spec.inputs.len()),
                &[inputs.len()],
            ));
        }
        let batch = inputs[0].batch();
        for (spec, value) in self.spec.inputs.iter().zip(inputs) {
            let ok = match (spec, value) {
                (InputSpec::Sequence { features, .. }, Value::Sequence { data, .. }) => {
                    data.dim().2 == *features
                }
                (InputSpec::Vector { features, .. }, Value::Vector(v)) => v.ncols() == *features,
                (InputSpec::Tokens { .. }, Value::Tokens { .. }) => true,
                _ => false,
            };
            if !ok || value.batch() != batch {
                let expected = match spec {
                    InputSpec::Sequence { features, .. } => {
                        format!("[{batch}, time, {features}] sequence")
                    }
                    InputSpec::Vector { features, .. } => format!("[{batch}, {features}] vector"),
                    InputSpec::Tokens { .. } => format!("[{batch}, time] token ids"),
                };
                return Err(Error::shape(spec.name(), expected, &value.grad_shape()));
            }
        }
        Ok(())
    }

    /// Forward through every node.
    /// `initial`: recurrent state per node (as returned in `final_states`), zeros when `None`.
    /// `step`: the training step, which seeds dropout masks so a resumed run draws the same ones.
    pub fn forward(
        &self,
        inputs: Vec<Value<F>>,
        training: bool,
        step: u64,
        initial: Option<&ModelState<F>>,
    ) -> Result<ForwardPass<F>> {
        self.check_inputs(&inputs)?;
        let mut values = inputs;
        let mut caches = Vec::with_capacity(self.nodes.len());
        let mut final_states = Vec::with_capacity(self.nodes.len());
        for (n, node) in self.nodes.iter().enumerate() {
            let args: Vec<&Value<F>> = self.node_inputs[n].iter().map(|&s| &values[s]).collect();
            let mode = ForwardMode {
                training,
                dropout_seed: dropout_seed(self.spec.seed, step, n),
            };
            let state = initial.map(|s| s[n].as_slice()).filter(|s| !s.is_empty());
            let out = node
                .forward(self.node_name(n), &args, mode, state)
                .map_err(|e| prefix(self.node_name(n), e))?;
            values.push(out.value);
            caches.push(out.cache);
            final_states.push(out.final_states);
        }
        Ok(ForwardPass {
            values,
            caches,
            final_states,
        })
    }

    /// Backward from ∂J/∂output (shaped like the output's data), consuming the pass: its
    /// values are dropped first (the caches hold what backward reads) and each node's cache
    /// once the node is done, some of them reused for the gradients on the way.
    pub fn backward(
        &self,
        pass: ForwardPass<F>,
        doutput: ArrayD<F>,
        options: &BackwardOptions<F>,
    ) -> Result<Gradients<F>> {
        let first_node = self.spec.inputs.len();
        let ForwardPass {
            values, mut caches, ..
        } = pass;
        // The output is the last slot (the values may hold the output alone, see keep_only_output).
        let mut slot_grads: Vec<Option<ArrayD<F>>> = vec![None; self.output + 1];
        drop(values);
        slot_grads[self.output] = Some(doutput);
        let mut per_node: Vec<Vec<ArrayD<F>>> = vec![Vec::new(); self.nodes.len()];
        let mut step_grad_norms = Vec::new();
        for n in (0..self.nodes.len()).rev() {
            let cache = caches.pop().expect("one cache per node");
            let Some(dout) = slot_grads[first_node + n].take() else {
                continue;
            };
            let name = self.node_name(n);
            let input_gradient = self.node_inputs[n][0] >= first_node;
            let g = self.nodes[n]
                .backward(name, cache, &dout, options, input_gradient)
                .map_err(|e| prefix(name, e))?;
            drop(dout);
            for (&slot, dx) in self.node_inputs[n].iter().zip(g.inputs) {
                // Nobody reads the gradients of the model's inputs.
                if let (Some(dx), true) = (dx, slot >= first_node) {
                    accumulate(&mut slot_grads[slot], dx);
                }
            }
            for (i, norms) in g.step_grad_norms.into_iter().enumerate() {
                step_grad_norms.push((name.to_owned(), self.nodes[n].entry_suffix(i), norms));
            }
            per_node[n] = g.params;
        }
        let params = self
            .nodes
            .iter()
            .zip(per_node)
            .filter(|(node, _)| node.trainable())
            .flat_map(|(node, grads)| fill_missing(node, grads))
            .collect();
        step_grad_norms.reverse();
        Ok(Gradients {
            params,
            step_grad_norms,
        })
    }
}

/// A node the output does not depend on gets zero gradients, so the list stays aligned.
fn fill_missing<F: Scalar>(node: &Node<F>, grads: Vec<ArrayD<F>>) -> Vec<ArrayD<F>> {
    if !grads.is_empty() {
        return grads;
    }
    node.named_tensors()
        .into_iter()
        .map(|(_, t)| ArrayD::zeros(t.raw_dim()))
        .collect()
}

fn accumulate<F: Scalar>(slot: &mut Option<ArrayD<F>>, dx: ArrayD<F>) {
    match slot {
        Some(acc) => acc.zip_mut_with(&dx, |a, &d| *a = *a + d),
        None => *slot = Some(dx),
    }
}

/// A dropout seed unique to (model seed, step, node), so masks never repeat
/// across steps and a resumed run reproduces them without saving RNG state.
fn dropout_seed(seed: u64, step: u64, node: usize) -> u64 {
    let mut z = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (node as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
