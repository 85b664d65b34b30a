//! The one check of a model spec: names and wiring, what each node may read,
//! the size of every node, and the shape of every value in the graph. The
//! model is built from this description; the binding hands it to TypeScript,
//! which checks data against it before any native call.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::spec::{InputSpec, ModelSpec, NodeSpec, OpSpec, RecurrentSpec};
use crate::params::check_parameter_count;
use crate::{Error, Result};

/// What kind of value flows along an edge of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ValueKind {
    /// Floats `[n, time, width]` with per-example lengths.
    Sequence,
    /// Token ids `[n, time]` with per-example lengths (width 0).
    Tokens,
    /// Floats `[n, width]`.
    Vector,
}

/// The shape of a model input or a node's output, the batch and time left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ValueShape {
    pub kind: ValueKind,
    pub width: usize,
    /// The model input whose time axis and lengths a sequence has (its slot);
    /// `None` for vectors. A sequence output's targets follow that input's time.
    pub time: Option<usize>,
}

impl ValueShape {
    fn floats(&self) -> bool {
        self.kind != ValueKind::Tokens
    }

    /// This value's dims for model inputs of the shapes `inputs` (in the spec's input order):
    /// `[n, time, width]` (the time axis of its input), `[n, time]` or `[n, width]`; `None`
    /// when `inputs` lack an axis it needs (the dataset's checks say what is wrong).
    pub fn dims(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let n = *inputs.first()?.first()?;
        let time = match self.time {
            Some(slot) => Some(*inputs.get(slot)?.get(1)?),
            None => None,
        };
        Some(match (self.kind, time) {
            (ValueKind::Sequence, Some(time)) => vec![n, time, self.width],
            (ValueKind::Tokens, Some(time)) => vec![n, time],
            (ValueKind::Vector, _) => vec![n, self.width],
            (_, None) => return None,
        })
    }
}

impl fmt::Display for ValueShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ValueKind::Sequence => write!(f, "[n, time, {}]", self.width),
            ValueKind::Tokens => write!(f, "[n, time] token ids"),
            ValueKind::Vector => write!(f, "[n, {}]", self.width),
        }
    }
}

/// A checked graph: the shape of every value and where each node reads.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphShapes {
    /// One per slot, in order: the model inputs, then every node's output.
    pub values: Vec<(String, ValueShape)>,
    /// The slots each node reads, in the order of its `inputs`.
    pub node_inputs: Vec<Vec<usize>>,
    /// Per token input, the smallest vocabulary of the embeddings that read it
    /// (every id must stay below it).
    pub vocabularies: Vec<(String, usize)>,
}

impl GraphShapes {
    pub fn output(&self) -> ValueShape {
        self.values.last().expect("a checked graph has a node").1
    }
}

/// `nodes 'name'`: how errors name a node, as the spec's `nodes` array holds it.
pub fn node_label(name: &str) -> String {
    format!("nodes '{name}'")
}

/// Checks `spec` without allocating any weight and describes every value.
/// Errors name the offending input or node (`nodes 'dec'`) and, for values
/// that do not fit together, both shapes.
pub fn describe(spec: &ModelSpec) -> Result<GraphShapes> {
    if spec.inputs.is_empty() {
        return Err(Error::invalid(
            "spec.inputs",
            "a model needs at least one input",
        ));
    }
    if spec.nodes.is_empty() {
        return Err(Error::invalid(
            "spec.nodes",
            "a model needs at least one node",
        ));
    }
    let mut graph = Builder::default();
    for (slot, input) in spec.inputs.iter().enumerate() {
        graph.add_value("spec.inputs", input.name(), input_shape(input, slot))?;
    }
    let mut parameters = 0;
    for node in &spec.nodes {
        let label = node_label(&node.name);
        let mut slots = graph.resolve(node, &label)?;
        let shapes: Vec<ValueShape> = slots.iter().map(|&s| graph.values[s].1).collect();
        parameters = count_parameters(parameters, &node.op, &label, shapes[0].width)?;
        let shape = op_shape(&node.op, &label, &shapes)?;
        if let OpSpec::Embedding { vocab_size, .. } = node.op {
            graph.note_vocabulary(slots[0], vocab_size);
        }
        slots.extend(initial_state_slot(spec, &graph, node, &label)?);
        graph.add_value("spec.nodes", &node.name, shape)?;
        graph.node_inputs.push(slots);
    }
    let last = &spec.nodes[spec.nodes.len() - 1].name;
    if spec.output != *last {
        return Err(Error::invalid(
            "spec.output",
            format!(
                "must name the last node ('{last}'), got '{}' (nodes after the output would never train)",
                spec.output
            ),
        ));
    }
    Ok(graph.finish(spec.inputs.len()))
}

#[derive(Default)]
struct Builder {
    values: Vec<(String, ValueShape)>,
    slots: HashMap<String, usize>,
    node_inputs: Vec<Vec<usize>>,
    vocabularies: HashMap<usize, usize>,
}

impl Builder {
    fn add_value(&mut self, list: &str, name: &str, shape: ValueShape) -> Result<()> {
        if self
            .slots
            .insert(name.to_owned(), self.values.len())
            .is_some()
        {
            return Err(Error::invalid(list, format!("duplicate name '{name}'")));
        }
        self.values.push((name.to_owned(), shape));
        Ok(())
    }

    fn slot(&self, name: &str, label: &str) -> Result<usize> {
        self.slots.get(name).copied().ok_or_else(|| {
            Error::invalid(
                label,
                format!("reads '{name}', which is neither a model input nor an earlier node"),
            )
        })
    }

    /// The slots `node` reads.
    fn resolve(&self, node: &NodeSpec, label: &str) -> Result<Vec<usize>> {
        if node.inputs.is_empty() {
            return Err(Error::invalid(label, "a node reads at least one input"));
        }
        node.inputs.iter().map(|n| self.slot(n, label)).collect()
    }

    fn note_vocabulary(&mut self, slot: usize, size: usize) {
        let smallest = self.vocabularies.entry(slot).or_insert(size);
        *smallest = (*smallest).min(size);
    }

    fn finish(self, inputs: usize) -> GraphShapes {
        let vocabularies = (0..inputs)
            .filter_map(|s| {
                let size = self.vocabularies.get(&s)?;
                Some((self.values[s].0.clone(), *size))
            })
            .collect();
        GraphShapes {
            values: self.values,
            node_inputs: self.node_inputs,
            vocabularies,
        }
    }
}

fn input_shape(input: &InputSpec, slot: usize) -> ValueShape {
    let (kind, width) = match input {
        InputSpec::Sequence { features, .. } => (ValueKind::Sequence, *features),
        InputSpec::Tokens { .. } => (ValueKind::Tokens, 0),
        InputSpec::Vector { features, .. } => (ValueKind::Vector, *features),
    };
    let time = (kind != ValueKind::Vector).then_some(slot);
    ValueShape { kind, width, time }
}

/// `total` plus the weights of the node, or an error naming it once the
/// node or the model outgrows [`crate::params::MAX_PARAMETERS`].
fn count_parameters(total: usize, op: &OpSpec, label: &str, input_width: usize) -> Result<usize> {
    let count = check_parameter_count(label, "its sizes", min_parameter_count(op, input_width))?;
    check_parameter_count(
        label,
        "the nodes up to and including it",
        total.checked_add(count),
    )
}

/// A lower bound on the weights `op` allocates when it reads features of
/// `input_width` (the big matrices and biases; peepholes and FGR's extra
/// matrix left out), or `None` when the count overflows `usize`. Checked before
/// anything is built, so absurd sizes never reach an allocation.
pub fn min_parameter_count(op: &OpSpec, input_width: usize) -> Option<usize> {
    match op {
        OpSpec::Embedding {
            vocab_size, dim, ..
        } => vocab_size.checked_mul(*dim),
        OpSpec::Lstm { recurrent, .. } => stack_parameter_count(recurrent, input_width, 4),
        OpSpec::Rnn { recurrent, .. } => stack_parameter_count(recurrent, input_width, 1),
        OpSpec::Gru { recurrent } => stack_parameter_count(recurrent, input_width, 3),
        OpSpec::Dense { units, .. } => units.checked_mul(input_width.checked_add(1)?),
        _ => Some(0),
    }
}

/// `gates·H·(x + H + 2)` per layer entry (`weight_ih`, `weight_hh`, both biases), `x` the entry's input width.
fn stack_parameter_count(spec: &RecurrentSpec, input_width: usize, gates: usize) -> Option<usize> {
    let directions = spec.directions();
    let h = spec.hidden_size;
    let rows = gates.checked_mul(h)?;
    let entry = |x: usize| rows.checked_mul(x.checked_add(h)?.checked_add(2)?);
    let upper_width = match spec.merge {
        super::spec::Merge::Concat => h.checked_mul(directions)?,
        super::spec::Merge::Sum => h,
    };
    let first = entry(input_width)?;
    let upper = entry(upper_width)?.checked_mul(spec.num_layers.saturating_sub(1))?;
    first.checked_add(upper)?.checked_mul(directions)
}

/// The shape of a node's output from its inputs' shapes, or an error naming the node.
fn op_shape(op: &OpSpec, label: &str, inputs: &[ValueShape]) -> Result<ValueShape> {
    let first = inputs[0];
    let kind = op.type_name();
    let mismatch = |reason: String| Error::mismatch(label, reason);
    let single = || {
        if inputs.len() == 1 {
            Ok(())
        } else {
            Err(mismatch(format!(
                "a {kind} node reads exactly one input, got {}",
                inputs.len()
            )))
        }
    };
    let reads_ids = matches!(op, OpSpec::Embedding { .. } | OpSpec::Repeat);
    if !reads_ids && inputs.iter().any(|s| !s.floats()) {
        return Err(mismatch(format!(
            "a {kind} node reads float values; token ids go through an embedding first"
        )));
    }
    // Sequences keep the time axis of the first input (repeat: of its second).
    let shape = |kind, width| {
        let time = if kind == ValueKind::Vector {
            None
        } else if let OpSpec::Repeat = op {
            inputs[1].time
        } else {
            first.time
        };
        Ok(ValueShape { kind, width, time })
    };
    match op {
        OpSpec::Embedding { dim, .. } => {
            single()?;
            if first.floats() {
                return Err(mismatch(format!(
                    "an embedding reads token ids (a tokens input), got {first}"
                )));
            }
            shape(ValueKind::Sequence, *dim)
        }
        OpSpec::Lstm { recurrent, .. }
        | OpSpec::Rnn { recurrent, .. }
        | OpSpec::Gru { recurrent } => {
            single()?;
            if first.kind != ValueKind::Sequence {
                return Err(mismatch(format!(
                    "a recurrent layer reads sequences [n, time, features], got vectors {first}"
                )));
            }
            let has_cell = matches!(op, OpSpec::Lstm { .. });
            let output_kind = match recurrent.output {
                super::spec::RecurrentOutput::Sequence => ValueKind::Sequence,
                _ => ValueKind::Vector,
            };
            shape(output_kind, recurrent.output_width(has_cell))
        }
        OpSpec::Dense { units, .. } => {
            single()?;
            shape(first.kind, *units)
        }
        OpSpec::Dropout { .. } => {
            single()?;
            Ok(first)
        }
        OpSpec::L2Normalize => {
            single()?;
            if first.kind != ValueKind::Vector {
                return Err(mismatch(format!(
                    "l2Normalize reads vectors [n, features], got {first}"
                )));
            }
            Ok(first)
        }
        OpSpec::Concat => {
            if inputs.iter().any(|s| s.kind != first.kind) {
                return Err(mismatch(format!(
                    "concat joins all vectors or all sequences, not a mixture: {} (repeat a vector over time first)",
                    list(inputs)
                )));
            }
            shape(first.kind, inputs.iter().map(|s| s.width).sum())
        }
        OpSpec::Repeat => {
            let [vector, sequence] = inputs else {
                return Err(mismatch(format!(
                    "repeat reads two inputs, a vector [n, w] and the sequence whose time axis it repeats over, got {}",
                    inputs.len()
                )));
            };
            if vector.kind != ValueKind::Vector || sequence.kind == ValueKind::Vector {
                return Err(mismatch(format!(
                    "repeat reads a vector [n, w] and then a sequence or token ids [n, time], got {}",
                    list(inputs)
                )));
            }
            shape(ValueKind::Sequence, vector.width)
        }
        OpSpec::Multiply => {
            if inputs
                .iter()
                .any(|s| (s.kind, s.width) != (first.kind, first.width))
            {
                return Err(mismatch(format!(
                    "multiply needs inputs of one shape, got {}",
                    list(inputs)
                )));
            }
            Ok(first)
        }
    }
}

/// The slot of the value a recurrent node starts from, once it is checked to
/// fit: a recurrent node of the same kind and sizes with a `states` output,
/// or any vector of the width of every layer entry's (h, c) side by side.
fn initial_state_slot(
    spec: &ModelSpec,
    graph: &Builder,
    node: &NodeSpec,
    label: &str,
) -> Result<Option<usize>> {
    let Some((recurrent, has_cell)) = node.op.recurrent() else {
        return Ok(None);
    };
    let Some(source) = &recurrent.initial_state else {
        return Ok(None);
    };
    let label = format!("{label}.initialState");
    let slot = graph.slot(source, &label)?;
    let shape = graph.values[slot].1;
    let needed = ValueShape {
        kind: ValueKind::Vector,
        width: recurrent.states_width(has_cell),
        time: None,
    };
    let wants = format!(
        "'{}' needs {needed} ({})",
        node.name,
        state_layout(node.op.type_name(), recurrent, has_cell)
    );
    let source_node = slot.checked_sub(spec.inputs.len()).map(|n| &spec.nodes[n]);
    if let Some((other, other_cell)) = source_node.and_then(|n| n.op.recurrent()) {
        let source_node = source_node.expect("a recurrent source is a node");
        let kind = source_node.op.type_name();
        if kind != node.op.type_name() || other.output != super::spec::RecurrentOutput::States {
            return Err(Error::mismatch(
                &label,
                format!(
                    "'{source}' is a {kind} node with output '{}'; a {} node starts from the 'states' output of a {} node",
                    format!("{:?}", other.output).to_lowercase(),
                    node.op.type_name(),
                    node.op.type_name()
                ),
            ));
        }
        if other.entries() != recurrent.entries() || other.hidden_size != recurrent.hidden_size {
            return Err(Error::mismatch(
                &label,
                format!(
                    "'{source}' hands on {shape} ({}), {wants}",
                    state_layout(kind, other, other_cell)
                ),
            ));
        }
    }
    if shape != needed {
        return Err(Error::mismatch(
            &label,
            format!("'{source}' is {shape}, {wants}"),
        ));
    }
    Ok(Some(slot))
}

/// `2 layers × 1 direction × (h, c) × H 8` for messages.
fn state_layout(kind: &str, recurrent: &RecurrentSpec, has_cell: bool) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "the {kind} states of {} × {} × {}H {}",
        plural(recurrent.num_layers, "layer"),
        plural(recurrent.directions(), "direction"),
        if has_cell { "(h, c) × " } else { "h × " },
        recurrent.hidden_size
    )
}

fn list(shapes: &[ValueShape]) -> String {
    shapes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
