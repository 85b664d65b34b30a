//! A model: named inputs, nodes in topological order, one output. Forward
//! evaluates the nodes in order; backward walks them in reverse, summing the
//! gradient each value receives from its consumers.

use std::collections::HashMap;

use ndarray::{Array1, ArrayD, ArrayViewD, ArrayViewMutD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::node::{min_parameter_count, ForwardMode, Node, NodeCache};
use super::recurrent_stack::LayerState;
use super::spec::{InputSpec, ModelSpec, OpSpec};
use super::value::Value;
use crate::layers::BackwardOptions;
use crate::{Error, Result, Scalar};

/// Where a node reads its inputs: model inputs first, then nodes, in order.
type Slot = usize;

pub struct Model<F> {
    spec: ModelSpec,
    nodes: Vec<Node<F>>,
    /// `node_inputs[n]`: the slots node n reads.
    node_inputs: Vec<Vec<Slot>>,
    output: Slot,
    /// Whether the output is a sequence `[batch, time, features]` (else `[batch, features]`).
    output_is_sequence: bool,
}

/// Everything one forward pass produced.
pub struct ForwardPass<F> {
    /// One value per slot: the inputs, then every node's output.
    pub values: Vec<Value<F>>,
    caches: Vec<NodeCache<F>>,
    /// Final states of each node's recurrent layer entries (empty for other nodes).
    pub final_states: Vec<Vec<LayerState<F>>>,
}

impl<F> ForwardPass<F> {
    pub fn output(&self) -> &Value<F> {
        self.values.last().expect("a model has at least one node")
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

fn slot_of(names: &HashMap<&str, Slot>, name: &str, reader: &str) -> Result<Slot> {
    names.get(name).copied().ok_or_else(|| Error::Key {
        name: reader.to_owned(),
        reason: format!("reads {name:?}, which is neither a model input nor an earlier node"),
    })
}

fn input_width(input: &InputSpec) -> usize {
    match input {
        InputSpec::Sequence { features, .. } | InputSpec::Vector { features, .. } => *features,
        InputSpec::Tokens { .. } => 0,
    }
}

impl<F: Scalar> Model<F> {
    /// Builds a freshly initialised model; the seed decides every initial weight.
    pub fn new(spec: ModelSpec) -> Result<Self> {
        if spec.nodes.is_empty() {
            return Err(Error::invalid("nodes", "a model needs at least one node"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut names: HashMap<&str, Slot> = HashMap::new();
        let mut widths: Vec<usize> = Vec::new();
        let mut sequential: Vec<bool> = Vec::new();
        for input in &spec.inputs {
            sequential.push(!matches!(input, InputSpec::Vector { .. }));
            if names.insert(input.name(), widths.len()).is_some() {
                return Err(Error::invalid(
                    "inputs",
                    format!("duplicate name {:?}", input.name()),
                ));
            }
            widths.push(input_width(input));
        }
        let mut parameters = 0;
        let mut nodes = Vec::with_capacity(spec.nodes.len());
        let mut node_inputs = Vec::with_capacity(spec.nodes.len());
        for node_spec in &spec.nodes {
            if node_spec.inputs.is_empty() {
                return Err(Error::invalid(
                    &node_spec.name,
                    "a node reads at least one input",
                ));
            }
            let slots = node_spec
                .inputs
                .iter()
                .map(|n| slot_of(&names, n, &node_spec.name))
                .collect::<Result<Vec<_>>>()?;
            let in_widths: Vec<usize> = slots.iter().map(|&s| widths[s]).collect();
            parameters = add_parameters(
                parameters,
                &node_spec.op,
                &node_spec.name,
                in_widths.first().copied(),
            )?;
            let node = Node::build(&node_spec.op, &in_widths, &mut rng)
                .map_err(|e| prefix(&node_spec.name, e))?;
            widths.push(node.output_width(&in_widths));
            sequential.push(node.output_is_sequence(sequential[slots[0]]));
            if names.insert(&node_spec.name, widths.len() - 1).is_some() {
                return Err(Error::invalid(
                    "nodes",
                    format!("duplicate name {:?}", node_spec.name),
                ));
            }
            nodes.push(node);
            node_inputs.push(slots);
        }
        let output = slot_of(&names, &spec.output, "output")?;
        if output != widths.len() - 1 {
            return Err(Error::invalid(
                "output",
                "must name the last node (nodes after it would never train)",
            ));
        }
        let output_is_sequence = sequential[output];
        Ok(Model {
            spec,
            nodes,
            node_inputs,
            output,
            output_is_sequence,
        })
    }

    pub fn output_is_sequence(&self) -> bool {
        self.output_is_sequence
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The node called `name`, if there is one.
    pub fn node(&self, name: &str) -> Option<&Node<F>> {
        self.node_index(name).map(|n| &self.nodes[n])
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node<F>> {
        self.node_index(name).map(|n| &mut self.nodes[n])
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.spec.nodes.iter().position(|n| n.name == name)
    }

    fn node_name(&self, n: usize) -> &str {
        &self.spec.nodes[n].name
    }

    /// Every tensor under its checkpoint key `"{node}.{pytorch name}"`.
    pub fn named_tensors(&self) -> Vec<(String, ArrayViewD<'_, F>)> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(n, node)| {
                let name = self.node_name(n);
                node.named_tensors()
                    .into_iter()
                    .map(move |(k, t)| (format!("{name}.{k}"), t))
            })
            .collect()
    }

    /// Mutable views of every tensor, in `named_tensors` order.
    pub fn tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        self.nodes
            .iter_mut()
            .flat_map(|n| n.tensors_mut())
            .collect()
    }

    /// Mutable views of the tensors the optimizer updates, aligned with [`Gradients::params`].
    pub fn trainable_tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        self.nodes
            .iter_mut()
            .filter(|n| n.trainable())
            .flat_map(|n| n.tensors_mut())
            .collect()
    }

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

    /// Backward from ∂J/∂output (shaped like the output's data).
    pub fn backward(
        &self,
        pass: &ForwardPass<F>,
        doutput: ArrayD<F>,
        options: &BackwardOptions<F>,
    ) -> Result<Gradients<F>> {
        let first_node = self.spec.inputs.len();
        let mut slot_grads: Vec<Option<ArrayD<F>>> = vec![None; pass.values.len()];
        slot_grads[self.output] = Some(doutput);
        let mut per_node: Vec<Vec<ArrayD<F>>> = vec![Vec::new(); self.nodes.len()];
        let mut step_grad_norms = Vec::new();
        for n in (0..self.nodes.len()).rev() {
            let Some(dout) = slot_grads[first_node + n].take() else {
                continue;
            };
            let name = self.node_name(n);
            let g = self.nodes[n]
                .backward(name, &pass.caches[n], &dout, options)
                .map_err(|e| prefix(name, e))?;
            for (&slot, dx) in self.node_inputs[n].iter().zip(g.inputs) {
                if let Some(dx) = dx {
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

/// Names the node in an error that came from inside it.
/// The most weights a model may hold: 2^28, 1 GiB in float32 (4 GiB with Adam's
/// gradients and moments). Far above any recurrent model a CPU trains, it turns
/// a size typo (`hiddenSize: 2 ** 31`) into an error instead of an allocation
/// that aborts the process. `ts/validate.ts` applies the same limit to layers.
pub const MAX_PARAMETERS: usize = 1 << 28;

/// `total` plus the weights of node `name`, or an error naming the node once the model outgrows [`MAX_PARAMETERS`].
fn add_parameters(
    total: usize,
    op: &OpSpec,
    name: &str,
    input_width: Option<usize>,
) -> Result<usize> {
    let count = min_parameter_count(op, input_width.unwrap_or(0));
    match count.and_then(|c| c.checked_add(total)) {
        Some(sum) if sum <= MAX_PARAMETERS => Ok(sum),
        _ => Err(Error::invalid(
            name,
            format!(
                "needs {} weights, and a model may hold at most {MAX_PARAMETERS} (2^28); check its sizes",
                count.map_or_else(|| format!("more than {}", usize::MAX), |c| format!("at least {c}"))
            ),
        )),
    }
}

fn prefix(node: &str, e: Error) -> Error {
    match e {
        Error::Invalid { name, reason } if name != node => Error::Invalid {
            name: format!("{node}.{name}"),
            reason,
        },
        Error::Shape {
            name,
            expected,
            actual,
        } if name != node => Error::Shape {
            name: format!("{node}.{name}"),
            expected,
            actual,
        },
        other => other,
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
