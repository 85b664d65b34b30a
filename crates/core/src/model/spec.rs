//! The plain-data description of a model: what the TypeScript facade sends,
//! what a checkpoint's `config.json` holds. Nodes are listed in topological
//! order; each names the nodes (or model inputs) it reads.

use serde::{Deserialize, Serialize};

use crate::layers::Activation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[default]
    Float32,
    Float64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    #[serde(default)]
    pub dtype: Dtype,
    #[serde(default)]
    pub seed: u64,
    pub inputs: Vec<InputSpec>,
    pub nodes: Vec<NodeSpec>,
    /// Name of the node whose value the loss reads and `predict` returns.
    pub output: String,
    pub loss: LossSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum InputSpec {
    /// Float sequences `[batch, time, features]` with per-sequence lengths.
    Sequence { name: String, features: usize },
    /// Token ids `[batch, time]` with per-sequence lengths.
    Tokens { name: String },
    /// Float vectors `[batch, features]`.
    Vector { name: String, features: usize },
}

impl InputSpec {
    pub fn name(&self) -> &str {
        match self {
            InputSpec::Sequence { name, .. }
            | InputSpec::Tokens { name }
            | InputSpec::Vector { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    pub name: String,
    pub inputs: Vec<String>,
    #[serde(flatten)]
    pub op: OpSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Merge {
    #[default]
    Concat,
    Sum,
}

/// What a recurrent node hands to the next node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum RecurrentOutput {
    /// Every step of the top layer: `[batch, time, H']`.
    #[default]
    Sequence,
    /// The top layer's output at each sequence's own last step: `[batch, H']`.
    Last,
    /// Every layer's final y and c concatenated (VQA-paper question vector):
    /// `[batch, layers · directions · (H + H)]` (LSTM) or `· H` (simple RNN).
    States,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrentSpec {
    pub hidden_size: usize,
    #[serde(default = "one")]
    pub num_layers: usize,
    #[serde(default)]
    pub bidirectional: bool,
    #[serde(default)]
    pub merge: Merge,
    #[serde(default)]
    pub output: RecurrentOutput,
    /// The node or vector input whose value starts this node: every layer
    /// entry's initial h (and c) side by side, `[batch, entries · (2)H]`, as a
    /// recurrent node of the same shape lays out its `states` output (PyTorch's
    /// `decoder(x, encoder(src)[1])`). Zeros when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_state: Option<String>,
}

impl RecurrentSpec {
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Layer entries: `numLayers · directions` (PyTorch's first state dimension).
    pub fn entries(&self) -> usize {
        self.num_layers * self.directions()
    }

    /// Width of what one layer hands to the next: `H · directions` (concat) or `H` (sum).
    pub fn merged_width(&self) -> usize {
        match self.merge {
            Merge::Concat => self.hidden_size * self.directions(),
            Merge::Sum => self.hidden_size,
        }
    }

    /// Width of every entry's final state side by side: `entries · (2)H`,
    /// `2H` per entry for a layer with a cell state (h and c), `H` without.
    pub fn states_width(&self, has_cell: bool) -> usize {
        let per_entry = if has_cell { 2 } else { 1 };
        self.entries() * per_entry * self.hidden_size
    }

    /// Width of the node's output.
    pub fn output_width(&self, has_cell: bool) -> usize {
        match self.output {
            RecurrentOutput::Sequence | RecurrentOutput::Last => self.merged_width(),
            RecurrentOutput::States => self.states_width(has_cell),
        }
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OpSpec {
    #[serde(rename_all = "camelCase")]
    Embedding {
        vocab_size: usize,
        dim: usize,
        #[serde(default)]
        frozen: bool,
    },
    #[serde(rename_all = "camelCase")]
    Lstm {
        #[serde(flatten)]
        recurrent: RecurrentSpec,
        #[serde(default)]
        variant: String,
        #[serde(default = "yes")]
        peepholes: bool,
        #[serde(default)]
        forget_bias: f64,
    },
    #[serde(rename_all = "camelCase")]
    Rnn {
        #[serde(flatten)]
        recurrent: RecurrentSpec,
        #[serde(default)]
        activation: String,
    },
    /// PyTorch's `nn.GRU` (see `layers::gru`).
    Gru {
        #[serde(flatten)]
        recurrent: RecurrentSpec,
    },
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
    },
    Dropout {
        rate: f64,
    },
    /// Concatenate along the feature axis (all inputs vectors, or all sequences).
    Concat,
    /// A vector `[batch, w]` repeated over the time axis of a sequence or token
    /// input (its second input): `[batch, time, w]` with that input's lengths.
    Repeat,
    /// Elementwise product of inputs of one shape.
    Multiply,
    /// Scale each row to unit L2 norm.
    L2Normalize,
}

impl OpSpec {
    /// A recurrent op's options and whether its layers carry a cell state
    /// beside h (LSTM); `None` for other ops.
    pub fn recurrent(&self) -> Option<(&RecurrentSpec, bool)> {
        match self {
            OpSpec::Lstm { recurrent, .. } => Some((recurrent, true)),
            OpSpec::Rnn { recurrent, .. } | OpSpec::Gru { recurrent } => Some((recurrent, false)),
            _ => None,
        }
    }

    /// The `type` the spec names it by.
    pub fn type_name(&self) -> &'static str {
        match self {
            OpSpec::Embedding { .. } => "embedding",
            OpSpec::Lstm { .. } => "lstm",
            OpSpec::Rnn { .. } => "rnn",
            OpSpec::Gru { .. } => "gru",
            OpSpec::Dense { .. } => "dense",
            OpSpec::Dropout { .. } => "dropout",
            OpSpec::Concat => "concat",
            OpSpec::Repeat => "repeat",
            OpSpec::Multiply => "multiply",
            OpSpec::L2Normalize => "l2Normalize",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LossSpec {
    /// Mean squared error over valid elements.
    Mse,
    /// Softmax cross-entropy from logits with class-index targets.
    CrossEntropy,
    /// Binary cross-entropy from logits.
    BinaryCrossEntropy,
}
