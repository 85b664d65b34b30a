//! One node of a model graph: a layer or a combinator, with its forward and
//! backward on [`Value`]s. Sequences pass through feed-forward layers as
//! `[batch·time, features]` rows and keep their lengths.

use ndarray::{concatenate, Array1, Array2, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Ix2, IxDyn};
use rand::Rng;

use super::recurrent_stack::{states_vector, LayerState, RecurrentStack, StackCache, StackOutput};
use super::spec::{OpSpec, RecurrentSpec};
use super::value::Value;
use crate::layers::recurrent::Recurrent;
use crate::layers::{
    BackwardOptions, Dense, DenseCache, DenseConfig, Dropout, DropoutCache, Embedding,
    EmbeddingConfig, Gru, GruCache, GruConfig, Lstm, LstmCache, LstmConfig, LstmVariant, RnnCache,
    RnnConfig, SimpleRnn,
};
use crate::{Error, ParamSet, Result, Scalar};

pub enum Node<F> {
    Embedding(Embedding<F>),
    Lstm(RecurrentStack<F, Lstm<F>>),
    Rnn(RecurrentStack<F, SimpleRnn<F>>),
    Gru(RecurrentStack<F, Gru<F>>),
    Dense(Dense<F>),
    Dropout { rate: f64 },
    Concat,
    Repeat,
    Multiply,
    L2Normalize,
}

/// A recurrent node's cache: its stack's, and whether its initial states came
/// from its `initialState` input (which then receives their gradient).
pub struct RecurrentCache<C> {
    stack: StackCache<C>,
    state_input: bool,
}

pub enum NodeCache<F> {
    Embedding {
        ids: Vec<u32>,
        batch: usize,
        time: usize,
    },
    Lstm(RecurrentCache<LstmCache<F>>),
    Rnn(RecurrentCache<RnnCache<F>>),
    Gru(RecurrentCache<GruCache<F>>),
    Dense {
        cache: DenseCache<F>,
        shape: Vec<usize>,
    },
    Dropout(DropoutCache<F, IxDyn>),
    Concat {
        widths: Vec<usize>,
    },
    Repeat,
    Multiply {
        inputs: Vec<ArrayD<F>>,
    },
    L2Normalize {
        y: Array2<F>,
        norms: Array1<F>,
    },
}

/// What a node's backward pass returns.
pub struct NodeGrads<F> {
    /// One per input (`None` for token inputs, which take no gradient).
    pub inputs: Vec<Option<ArrayD<F>>>,
    /// Gradients of the node's trainable tensors, in `trainable` order.
    pub params: Vec<ArrayD<F>>,
    /// Per-step gradient norms of each recurrent layer entry: `[time]` each.
    pub step_grad_norms: Vec<Array1<F>>,
}

/// What a node's forward pass returns.
pub struct NodeForward<F> {
    pub value: Value<F>,
    pub cache: NodeCache<F>,
    /// Final state of each recurrent layer entry (empty for other nodes).
    pub final_states: Vec<LayerState<F>>,
}

/// Training-mode details of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct ForwardMode {
    pub training: bool,
    /// Seed of this node's dropout mask for this step.
    pub dropout_seed: u64,
}

/// Spec strings may be left empty (serde's default) to mean the default name.
fn default_if_empty<'a>(name: &'a str, default: &'a str) -> &'a str {
    if name.is_empty() {
        default
    } else {
        name
    }
}

/// Builds `num_layers × directions` layers, layer-major, each from its input width.
fn build_stack<F, L, R: Rng>(
    spec: &RecurrentSpec,
    input_size: usize,
    rng: &mut R,
    mut make: impl FnMut(usize, &mut R) -> Result<L>,
) -> Result<RecurrentStack<F, L>> {
    if spec.num_layers == 0 || spec.hidden_size == 0 {
        return Err(Error::invalid("numLayers/hiddenSize", "must both be >= 1"));
    }
    let directions = if spec.bidirectional { 2 } else { 1 };
    let mut layers = Vec::with_capacity(spec.num_layers * directions);
    let mut width = input_size;
    for _ in 0..spec.num_layers {
        for _ in 0..directions {
            layers.push(make(width, rng)?);
        }
        width = match spec.merge {
            super::spec::Merge::Concat => spec.hidden_size * directions,
            super::spec::Merge::Sum => spec.hidden_size,
        };
    }
    Ok(RecurrentStack::new(
        layers,
        spec.bidirectional,
        spec.merge,
        spec.output,
    ))
}

impl<F: Scalar> Node<F> {
    /// Builds a freshly initialised node; `input_widths` are the feature widths of its inputs.
    pub fn build<R: Rng>(op: &OpSpec, input_widths: &[usize], rng: &mut R) -> Result<Self> {
        let width = input_widths.first().copied().unwrap_or(0);
        Ok(match op {
            OpSpec::Embedding {
                vocab_size,
                dim,
                frozen,
            } => Node::Embedding(Embedding::new(
                EmbeddingConfig {
                    vocab_size: *vocab_size,
                    dim: *dim,
                    frozen: *frozen,
                },
                rng,
            )?),
            OpSpec::Lstm {
                recurrent,
                variant,
                peepholes,
                forget_bias,
            } => {
                let variant = default_if_empty(variant, "vanilla").parse()?;
                let forget_bias = F::from_f64_lossy(*forget_bias);
                Node::Lstm(build_stack(recurrent, width, rng, |input_size, rng| {
                    let config = LstmConfig {
                        input_size,
                        hidden_size: recurrent.hidden_size,
                        variant,
                        peepholes: *peepholes && variant != LstmVariant::Np,
                    };
                    Lstm::new(config, forget_bias, rng)
                })?)
            }
            OpSpec::Rnn {
                recurrent,
                activation,
            } => {
                let activation = default_if_empty(activation, "tanh").parse()?;
                Node::Rnn(build_stack(recurrent, width, rng, |input_size, rng| {
                    SimpleRnn::new(
                        RnnConfig {
                            input_size,
                            hidden_size: recurrent.hidden_size,
                            activation,
                        },
                        rng,
                    )
                })?)
            }
            OpSpec::Gru { recurrent } => {
                Node::Gru(build_stack(recurrent, width, rng, |input_size, rng| {
                    let hidden_size = recurrent.hidden_size;
                    Gru::new(
                        GruConfig {
                            input_size,
                            hidden_size,
                        },
                        rng,
                    )
                })?)
            }
            OpSpec::Dense { units, activation } => Node::Dense(Dense::new(
                DenseConfig {
                    in_features: width,
                    out_features: *units,
                    activation: *activation,
                },
                rng,
            )?),
            OpSpec::Dropout { rate } => {
                Dropout::new(*rate, 0)?;
                Node::Dropout { rate: *rate }
            }
            OpSpec::Concat => Node::Concat,
            OpSpec::Repeat => Node::Repeat,
            OpSpec::Multiply => Node::Multiply,
            OpSpec::L2Normalize => Node::L2Normalize,
        })
    }

    /// Every tensor with its key (PyTorch names with `_l{k}` / `_reverse` for recurrent layers).
    pub fn named_tensors(&self) -> Vec<(String, ArrayViewD<'_, F>)> {
        match self {
            Node::Embedding(e) => plain_names(&e.params),
            Node::Dense(d) => plain_names(&d.params),
            Node::Lstm(s) => stack_names(s),
            Node::Rnn(s) => stack_names(s),
            Node::Gru(s) => stack_names(s),
            _ => Vec::new(),
        }
    }

    /// Mutable views of every tensor, in `named_tensors` order.
    pub fn tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        match self {
            Node::Embedding(e) => e.params.tensors_mut().into_iter().map(|(_, t)| t).collect(),
            Node::Dense(d) => d.params.tensors_mut().into_iter().map(|(_, t)| t).collect(),
            Node::Lstm(s) => stack_tensors_mut(s),
            Node::Rnn(s) => stack_tensors_mut(s),
            Node::Gru(s) => stack_tensors_mut(s),
            _ => Vec::new(),
        }
    }

    /// Whether the optimizer updates this node's tensors (frozen embeddings are not).
    pub fn trainable(&self) -> bool {
        match self {
            Node::Embedding(e) => e.trainable(),
            _ => true,
        }
    }

    /// PyTorch's suffix (`_l{k}`, `_l{k}_reverse`) of recurrent layer entry `i`.
    pub fn entry_suffix(&self, i: usize) -> String {
        match self {
            Node::Lstm(s) => s.suffix(i),
            Node::Rnn(s) => s.suffix(i),
            Node::Gru(s) => s.suffix(i),
            _ => String::new(),
        }
    }
}

fn plain_names<'a, F>(set: &'a dyn ParamSet<F>) -> Vec<(String, ArrayViewD<'a, F>)> {
    set.tensors()
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t))
        .collect()
}

fn stack_tensors_mut<F: Scalar, L: Recurrent<F>>(
    stack: &mut RecurrentStack<F, L>,
) -> Vec<ArrayViewMutD<'_, F>> {
    stack
        .layers_mut()
        .iter_mut()
        .flat_map(|l| l.parameters_mut().tensors_mut())
        .map(|(_, t)| t)
        .collect()
}

fn stack_names<F: Scalar, L: Recurrent<F>>(
    stack: &RecurrentStack<F, L>,
) -> Vec<(String, ArrayViewD<'_, F>)> {
    stack
        .layers()
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| {
            let suffix = stack.suffix(i);
            layer
                .parameters()
                .tensors()
                .into_iter()
                .map(move |(n, t)| (format!("{n}{suffix}"), t))
        })
        .collect()
}

/// Rows view of a float value: `[batch·time, features]` for sequences.
fn as_rows<F: Scalar>(value: &Value<F>, node: &str) -> Result<(Array2<F>, Vec<usize>)> {
    let data = value.float_data(node)?;
    let shape = data.shape().to_vec();
    let features = *shape.last().expect("float values have rank >= 2");
    let rows = data.len() / features.max(1);
    let matrix = data
        .into_shape_with_order((rows, features))
        .map_err(|e| Error::invalid(node, e.to_string()))?;
    Ok((matrix, shape))
}

/// Rebuilds a value of the input's kind from rows `[batch·time, features]`.
fn from_rows<F: Scalar>(like: &Value<F>, rows: Array2<F>) -> Value<F> {
    let (batch, time, lengths) = match like {
        Value::Sequence { data, lengths } => (data.dim().0, data.dim().1, lengths),
        Value::Tokens { ids, lengths } => (ids.dim().0, ids.dim().1, lengths),
        Value::Vector(_) => return Value::Vector(rows),
    };
    let features = rows.ncols();
    Value::Sequence {
        data: rows
            .into_shape_with_order((batch, time, features))
            .expect("rows = batch·time"),
        lengths: lengths.clone(),
    }
}

fn reshape<F: Scalar>(a: Array2<F>, shape: &[usize]) -> ArrayD<F> {
    a.into_shape_with_order(IxDyn(shape))
        .expect("same number of elements")
}

fn float_inputs<F: Scalar>(inputs: &[&Value<F>], node: &str) -> Result<Vec<ArrayD<F>>> {
    inputs.iter().map(|v| v.float_data(node)).collect()
}

/// `inputs`: the sequence, then the `initialState` value when the spec names one.
/// `initial` (a carried state) takes precedence over the `initialState` value.
/// `training`: keep the layers' caches for a backward pass (inference keeps none).
fn stack_forward<F: Scalar, L: Recurrent<F>>(
    stack: &RecurrentStack<F, L>,
    inputs: &[&Value<F>],
    initial: Option<&[LayerState<F>]>,
    training: bool,
    node: &str,
    wrap: impl FnOnce(RecurrentCache<L::Cache>) -> NodeCache<F>,
) -> Result<NodeForward<F>> {
    let Value::Sequence { data, lengths } = inputs[0] else {
        return Err(Error::invalid(
            node,
            "a recurrent layer needs a sequence input [batch, time, features]",
        ));
    };
    let from_input = match (initial, inputs.get(1)) {
        (None, Some(Value::Vector(v))) => Some(stack.states_from(v.view(), data.dim().0)?),
        _ => None,
    };
    let initial = from_input.as_deref().or(initial);
    let out = stack.forward(data.view(), lengths, initial, training)?;
    let value = match out.output {
        StackOutput::Sequence(data) => Value::Sequence {
            data,
            lengths: lengths.clone(),
        },
        StackOutput::Vector(v) => Value::Vector(v),
    };
    Ok(NodeForward {
        value,
        cache: wrap(RecurrentCache {
            stack: out.cache,
            state_input: from_input.is_some(),
        }),
        final_states: out.finals,
    })
}

/// A vector `[batch, w]` over the time axis of `like`: `[batch, time, w]` with its lengths.
fn repeat<F: Scalar>(vector: &Value<F>, like: &Value<F>, node: &str) -> Result<Value<F>> {
    let (Value::Vector(v), Some(lengths)) = (vector, like.lengths()) else {
        return Err(Error::invalid(
            node,
            "repeat needs a vector [batch, w] and a sequence or token ids [batch, time]",
        ));
    };
    let (batch, time) = match like {
        Value::Sequence { data, .. } => (data.dim().0, data.dim().1),
        Value::Tokens { ids, .. } => ids.dim(),
        Value::Vector(_) => unreachable!("vectors have no lengths"),
    };
    if v.nrows() != batch {
        return Err(Error::shape(
            node,
            format!("[{batch}, {}] (the batch of the sequence)", v.ncols()),
            v.shape(),
        ));
    }
    let data = v
        .view()
        .insert_axis(Axis(1))
        .broadcast((batch, time, v.ncols()))
        .expect("a time axis of 1 broadcasts")
        .to_owned();
    Ok(Value::Sequence {
        data,
        lengths: lengths.clone(),
    })
}

impl<F: Scalar> Node<F> {
    /// Forward on the node's input values. `initial`: the recurrent layers' starting states.
    pub fn forward(
        &self,
        node: &str,
        inputs: &[&Value<F>],
        mode: ForwardMode,
        initial: Option<&[LayerState<F>]>,
    ) -> Result<NodeForward<F>> {
        let first = inputs[0];
        let simple = |value, cache| NodeForward {
            value,
            cache,
            final_states: Vec::new(),
        };
        Ok(match self {
            Node::Embedding(e) => {
                let Value::Tokens { ids, lengths } = first else {
                    return Err(Error::invalid(
                        node,
                        "an embedding needs token ids [batch, time]",
                    ));
                };
                let (batch, time) = ids.dim();
                let flat: Vec<u32> = ids.iter().copied().collect();
                let rows = e.forward(&flat)?;
                let data = rows
                    .into_shape_with_order((batch, time, e.config.dim))
                    .expect("rows = batch·time");
                simple(
                    Value::Sequence {
                        data,
                        lengths: lengths.clone(),
                    },
                    NodeCache::Embedding {
                        ids: flat,
                        batch,
                        time,
                    },
                )
            }
            Node::Lstm(stack) => {
                stack_forward(stack, inputs, initial, mode.training, node, NodeCache::Lstm)?
            }
            Node::Rnn(stack) => {
                stack_forward(stack, inputs, initial, mode.training, node, NodeCache::Rnn)?
            }
            Node::Gru(stack) => {
                stack_forward(stack, inputs, initial, mode.training, node, NodeCache::Gru)?
            }
            Node::Repeat => simple(repeat(first, inputs[1], node)?, NodeCache::Repeat),
            Node::Dense(d) => {
                let (rows, shape) = as_rows(first, node)?;
                let (y, cache) = d.forward(rows.view())?;
                simple(from_rows(first, y), NodeCache::Dense { cache, shape })
            }
            Node::Dropout { rate } => {
                let x = first.float_data(node)?;
                let (y, cache) =
                    Dropout::new(*rate, mode.dropout_seed)?.forward(x.view(), mode.training);
                let value = match first {
                    Value::Sequence { lengths, .. } => Value::Sequence {
                        data: y.into_dimensionality().expect("rank 3"),
                        lengths: lengths.clone(),
                    },
                    _ => Value::Vector(y.into_dimensionality().expect("rank 2")),
                };
                simple(value, NodeCache::Dropout(cache))
            }
            Node::Concat => {
                let parts = float_inputs(inputs, node)?;
                let widths = parts
                    .iter()
                    .map(|p| *p.shape().last().expect("rank >= 2"))
                    .collect();
                let axis = Axis(parts[0].ndim() - 1);
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                let joined = concatenate(axis, &views).map_err(|_| {
                    Error::invalid(
                        node,
                        format!(
                            "concat inputs disagree: {:?}",
                            parts.iter().map(|p| p.shape().to_vec()).collect::<Vec<_>>()
                        ),
                    )
                })?;
                simple(value_like(first, joined)?, NodeCache::Concat { widths })
            }
            Node::Multiply => {
                let parts = float_inputs(inputs, node)?;
                if let Some(bad) = parts.iter().find(|p| p.shape() != parts[0].shape()) {
                    return Err(Error::shape(
                        node,
                        format!("{:?} (the first input's shape)", parts[0].shape()),
                        bad.shape(),
                    ));
                }
                let product = parts
                    .iter()
                    .skip(1)
                    .fold(parts[0].clone(), |acc, p| acc * p);
                simple(
                    value_like(first, product)?,
                    NodeCache::Multiply { inputs: parts },
                )
            }
            Node::L2Normalize => {
                let Value::Vector(x) = first else {
                    return Err(Error::invalid(
                        node,
                        "l2Normalize needs vectors [batch, features]",
                    ));
                };
                let norms = x.map_axis(Axis(1), |row| {
                    (row.dot(&row) + F::from_f64_lossy(1e-12)).sqrt()
                });
                let y = x / &norms.view().insert_axis(Axis(1));
                simple(
                    Value::Vector(y.clone()),
                    NodeCache::L2Normalize { y, norms },
                )
            }
        })
    }

    /// Backward: `dout` is ∂J/∂(node output), shaped like the output's data. Consumes the
    /// node's cache (a recurrent layer may write its gradients over it). `input_gradient`:
    /// whether anybody reads the gradient of the first input (not when it is a model input);
    /// without it a recurrent node skips its first layer's δx GEMM and returns `None` for it.
    pub fn backward(
        &self,
        node: &str,
        cache: NodeCache<F>,
        dout: &ArrayD<F>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<NodeGrads<F>> {
        // Reshaping to rows needs a standard layout; gradients sliced out of a concat may not
        // have one (a copy only then).
        let dout = &dout.as_standard_layout();
        let plain = |dx: ArrayD<F>| NodeGrads {
            inputs: vec![Some(dx)],
            params: Vec::new(),
            step_grad_norms: Vec::new(),
        };
        Ok(match (self, cache) {
            (Node::Embedding(e), NodeCache::Embedding { ids, batch, time }) => {
                let dy = dout
                    .view()
                    .into_shape_with_order((batch * time, e.config.dim))
                    .map_err(|err| Error::invalid(node, err.to_string()))?;
                let params = e
                    .backward(&ids, dy)?
                    .map(|g| g.weight.into_dyn())
                    .into_iter()
                    .collect();
                NodeGrads {
                    inputs: vec![None],
                    params,
                    step_grad_norms: Vec::new(),
                }
            }
            (Node::Lstm(stack), NodeCache::Lstm(c)) => stack_grads(
                stack.backward(c.stack, dout.view(), options, input_gradient)?,
                c.state_input,
            ),
            (Node::Rnn(stack), NodeCache::Rnn(c)) => stack_grads(
                stack.backward(c.stack, dout.view(), options, input_gradient)?,
                c.state_input,
            ),
            (Node::Gru(stack), NodeCache::Gru(c)) => stack_grads(
                stack.backward(c.stack, dout.view(), options, input_gradient)?,
                c.state_input,
            ),
            // Every step received the vector: its gradient is their sum. The sequence
            // lends only its time axis and lengths, and takes no gradient.
            (Node::Repeat, NodeCache::Repeat) => NodeGrads {
                inputs: vec![Some(dout.sum_axis(Axis(1))), None],
                params: Vec::new(),
                step_grad_norms: Vec::new(),
            },
            (Node::Dense(d), NodeCache::Dense { cache, shape }) => {
                let rows = dout.len() / d.config.out_features;
                let dy = dout
                    .view()
                    .into_shape_with_order((rows, d.config.out_features))
                    .map_err(|err| Error::invalid(node, err.to_string()))?;
                let g = d.backward(&cache, dy)?;
                NodeGrads {
                    inputs: vec![Some(reshape(g.dx, &shape))],
                    params: vec![g.params.weight.into_dyn(), g.params.bias.into_dyn()],
                    step_grad_norms: Vec::new(),
                }
            }
            (Node::Dropout { rate }, NodeCache::Dropout(c)) => {
                plain(Dropout::new(*rate, 0)?.backward(&c, dout.view())?)
            }
            (Node::Concat, NodeCache::Concat { widths }) => {
                let axis = dout.ndim() - 1;
                let mut start = 0;
                let parts = widths
                    .iter()
                    .map(|w| {
                        let part = dout
                            .slice_axis(Axis(axis), (start..start + w).into())
                            .to_owned();
                        start += w;
                        Some(part)
                    })
                    .collect();
                NodeGrads {
                    inputs: parts,
                    params: Vec::new(),
                    step_grad_norms: Vec::new(),
                }
            }
            (Node::Multiply, NodeCache::Multiply { inputs: parts }) => {
                let grads = (0..parts.len())
                    .map(|i| {
                        let others = parts.iter().enumerate().filter(|(j, _)| *j != i);
                        Some(others.fold(dout.to_owned(), |acc, (_, p)| acc * p))
                    })
                    .collect();
                NodeGrads {
                    inputs: grads,
                    params: Vec::new(),
                    step_grad_norms: Vec::new(),
                }
            }
            (Node::L2Normalize, NodeCache::L2Normalize { y, norms }) => {
                let dy = dout
                    .view()
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| Error::shape(node, "[batch, features]", dout.shape()))?;
                let projection = (&dy * &y).sum_axis(Axis(1)).insert_axis(Axis(1));
                let dx = (&dy - &(&y * &projection)) / norms.view().insert_axis(Axis(1));
                plain(dx.into_dyn())
            }
            _ => unreachable!("a node's cache always comes from the same node's forward"),
        })
    }
}

/// `state_input`: whether the initial states came from the `initialState` input,
/// which then receives ∂J/∂(initial states) in the layout it was read in.
fn stack_grads<F: Scalar>(
    g: super::recurrent_stack::StackGrads<F>,
    state_input: bool,
) -> NodeGrads<F> {
    let dstate = state_input.then(|| states_vector(&g.dinitial).into_dyn());
    NodeGrads {
        inputs: vec![g.dx.map(|dx| dx.into_dyn()), dstate],
        params: g.params,
        step_grad_norms: g.step_grad_norms,
    }
}

/// Wraps a combined array as a value of the first input's kind.
fn value_like<F: Scalar>(like: &Value<F>, data: ArrayD<F>) -> Result<Value<F>> {
    Ok(match like {
        Value::Sequence { lengths, .. } => Value::Sequence {
            data: data
                .into_dimensionality()
                .map_err(|e| Error::invalid("sequence", e.to_string()))?,
            lengths: lengths.clone(),
        },
        _ => Value::Vector(
            data.into_dimensionality()
                .map_err(|e| Error::invalid("vector", e.to_string()))?,
        ),
    })
}
