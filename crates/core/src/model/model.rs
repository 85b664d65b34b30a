//! A model: named inputs, nodes in topological order, one output, and the
//! weights every node owns. Built from a [`ModelSpec`] after its shapes are
//! checked; evaluated by [`super::graph`].

use ndarray::{ArrayViewD, ArrayViewMutD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::node::Node;
use super::shapes::{describe, GraphShapes, ValueKind};
use super::spec::ModelSpec;
use crate::params::{assign_named, NamedValues};
use crate::{Error, Result, Scalar};

/// Where a node reads its inputs: model inputs first, then nodes, in order.
type Slot = usize;

pub struct Model<F> {
    pub(super) spec: ModelSpec,
    shapes: GraphShapes,
    pub(super) nodes: Vec<Node<F>>,
    /// `node_inputs[n]`: the slots node n reads.
    pub(super) node_inputs: Vec<Vec<Slot>>,
    pub(super) output: Slot,
    /// Whether the output is a sequence `[batch, time, features]` (else `[batch, features]`).
    output_is_sequence: bool,
}

impl<F: Scalar> Model<F> {
    /// Builds a freshly initialised model; the seed decides every initial weight.
    /// The spec is checked first ([`describe`]), so no weight is allocated for a bad one.
    pub fn new(spec: ModelSpec) -> Result<Self> {
        let shapes = describe(&spec)?;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let nodes = spec
            .nodes
            .iter()
            .zip(&shapes.node_inputs)
            .map(|(node, slots)| {
                let widths: Vec<usize> = slots.iter().map(|&s| shapes.values[s].1.width).collect();
                Node::build(&node.op, &widths, &mut rng).map_err(|e| prefix(&node.name, e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            output: shapes.values.len() - 1,
            output_is_sequence: shapes.output().kind == ValueKind::Sequence,
            node_inputs: shapes.node_inputs.clone(),
            shapes,
            spec,
            nodes,
        })
    }

    /// The shape of every value in the graph (see [`describe`]).
    pub fn shapes(&self) -> &GraphShapes {
        &self.shapes
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

    pub(super) fn node_name(&self, n: usize) -> &str {
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

    /// Replaces tensors by key (any subset) under the rules of [`assign_named`]:
    /// known keys, their shapes, finite values, nothing changed unless all hold.
    pub fn assign_named(&mut self, sources: &[NamedValues<'_, F>]) -> Result<()> {
        let names: Vec<String> = self.named_tensors().into_iter().map(|(n, _)| n).collect();
        let targets = names.into_iter().zip(self.tensors_mut()).collect();
        assign_named(targets, sources, "this model")
    }

    /// Mutable views of the tensors the optimizer updates, aligned with [`Gradients::params`].
    pub fn trainable_tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        self.nodes
            .iter_mut()
            .filter(|n| n.trainable())
            .flat_map(|n| n.tensors_mut())
            .collect()
    }
}

/// Names the node in an error that came from inside it.
pub(super) fn prefix(node: &str, e: Error) -> Error {
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
