//! Decoding an encoder–decoder model. The nodes that do not depend on the
//! decoder's token input — the encoder, and whatever conditions the decoder
//! (its `initialState`, a repeated vector) — run once per batch on the whole
//! inputs; the nodes that do — the decoder — then run one step at a time from
//! `start`, each step reading the token chosen at the step before and carrying
//! its recurrent state, until `stop` or `max_steps`. Greedy for a beam width of
//! 1; beam search otherwise, with the whole beam in one batch of `n · k` rows
//! whose carried states are reordered after every step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{Array2, Axis};

use super::graph::ModelState;
use super::model::Model;
use super::node::ForwardMode;
use super::recurrent_stack::LayerState;
use super::shapes::ValueKind;
use super::spec::{InputSpec, LossSpec};
use super::value::Value;
use crate::{Error, Result, Scalar};

/// How to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// The token input the decoder reads: its own previous outputs, starting with `start`.
    pub decoder_input: String,
    pub start: u32,
    /// Ends a sequence; not part of the returned ids.
    pub stop: u32,
    /// Tokens decoded at most per sequence, `stop` included.
    pub max_steps: usize,
    /// Hypotheses kept per example; 1 is greedy.
    pub beam_width: usize,
    /// α in the beam's ranking score log P / length^α (length counting `stop`): 0 ranks by
    /// log-probability alone, larger values favour longer sequences.
    pub length_penalty: f64,
}

/// One decoded sequence per example: the ids (without `start` and `stop`) and their
/// log-probability under the model, log P(ids, stop | inputs) (without the stop term
/// when `max_steps` cut the sequence).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub ids: Vec<Vec<u32>>,
    pub log_probs: Vec<f64>,
}

/// Decodes every example of `inputs`: the model's inputs other than the decoder's, in the
/// spec's order (see [`Decoder::decode`]).
pub fn decode<F: Scalar>(
    model: &Model<F>,
    inputs: Vec<Value<F>>,
    options: &DecodeOptions,
) -> Result<Decoded> {
    Decoder::new(model, options)?.decode(inputs, &AtomicBool::new(false))
}

fn ranking_score(ids: &[u32], log_prob: f64, options: &DecodeOptions) -> f64 {
    let length = (ids.len() + 1) as f64;
    log_prob / length.powf(options.length_penalty)
}

/// Values by slot (the model inputs, then every node's output); `None` where not computed.
type Slots<F> = Vec<Option<Value<F>>>;

/// A model checked for decoding, knowing which part of its graph runs once (the context)
/// and which step by step (the decoder).
pub struct Decoder<'m, F> {
    model: &'m Model<F>,
    options: &'m DecodeOptions,
    /// Slot of the decoder's token input.
    decoder: usize,
    /// Per slot: whether it depends on the decoder input.
    stepped: Vec<bool>,
}

impl<'m, F: Scalar> Decoder<'m, F> {
    /// Checks the options and that the model is an encoder–decoder `decoder_input` can drive.
    pub fn new(model: &'m Model<F>, options: &'m DecodeOptions) -> Result<Self> {
        check_options(options)?;
        let spec = model.spec();
        let shapes = model.shapes();
        let decoder = spec
            .inputs
            .iter()
            .position(|i| i.name() == options.decoder_input)
            .filter(|&s| shapes.values[s].1.kind == ValueKind::Tokens)
            .ok_or_else(|| no_decoder_input(model, &options.decoder_input))?;
        let first_node = spec.inputs.len();
        let mut stepped = vec![false; shapes.values.len()];
        stepped[decoder] = true;
        for (n, reads) in shapes.node_inputs.iter().enumerate() {
            stepped[first_node + n] = reads.iter().any(|&s| stepped[s]);
        }
        let decoder = Decoder {
            model,
            options,
            decoder,
            stepped,
        };
        decoder.check_decoder()?;
        decoder.check_tokens(shapes.output().width)?;
        Ok(decoder)
    }

    /// The inputs [`Decoder::decode`] takes: the model's, but the decoder's.
    pub fn encoder_inputs(&self) -> Vec<InputSpec> {
        let inputs = self.model.spec().inputs.iter().enumerate();
        inputs
            .filter(|&(s, _)| s != self.decoder)
            .map(|(_, spec)| spec.clone())
            .collect()
    }

    /// Decodes every example of `inputs` (as [`Decoder::encoder_inputs`] lists them). Beam
    /// search returns the best of its hypotheses and of the greedy one, by the ranking score,
    /// so it never returns a sequence the model finds less likely than the greedy one (with
    /// `length_penalty` 0). Raising `cancel` stops it before its next step, with an error.
    pub fn decode(&self, inputs: Vec<Value<F>>, cancel: &AtomicBool) -> Result<Decoded> {
        let context = self.encode(inputs)?;
        let greedy = self.greedy(&context, cancel)?;
        if self.options.beam_width == 1 {
            return Ok(greedy);
        }
        let beam = self.beam(&context, cancel)?;
        let rank = |ids: &[u32], log_prob: f64| ranking_score(ids, log_prob, self.options);
        let (ids, log_probs) = (0..greedy.ids.len())
            .map(|b| {
                let beam_wins = rank(&beam.ids[b], beam.log_probs[b])
                    >= rank(&greedy.ids[b], greedy.log_probs[b]);
                let best = if beam_wins { &beam } else { &greedy };
                (best.ids[b].clone(), best.log_probs[b])
            })
            .unzip();
        Ok(Decoded { ids, log_probs })
    }

    fn first_node(&self) -> usize {
        self.model.spec().inputs.len()
    }

    /// The output must be the decoder's per-step logits, and every decoder node steppable.
    fn check_decoder(&self) -> Result<()> {
        let spec = self.model.spec();
        let shapes = self.model.shapes();
        let output = shapes.output();
        let name = &self.options.decoder_input;
        if spec.loss != LossSpec::CrossEntropy
            || output.kind != ValueKind::Sequence
            || !self.stepped.last().copied().unwrap_or(false)
        {
            return Err(Error::invalid(
                "decoderInput",
                format!("decoding needs per-step logits over tokens that depend on {name:?}: a crossEntropy loss on a sequence output computed from it"),
            ));
        }
        for (n, node) in spec.nodes.iter().enumerate() {
            if !self.stepped[self.first_node() + n] {
                continue;
            }
            if let Some((recurrent, _)) = node.op.recurrent() {
                if recurrent.bidirectional {
                    return Err(Error::invalid(
                        &node.name,
                        "a bidirectional decoder reads each sequence backwards from its end, so it cannot decode step by step",
                    ));
                }
            }
            let context_sequence = shapes.node_inputs[n]
                .iter()
                .find(|&&s| !self.stepped[s] && shapes.values[s].1.kind != ValueKind::Vector);
            if let Some(&s) = context_sequence {
                return Err(Error::invalid(
                    &node.name,
                    format!("the decoder reads {:?}, a sequence over the source's time axis; step by step it can only read vectors of the encoder (its 'states' or 'last' output, or a repeat of them)", shapes.values[s].0),
                ));
            }
        }
        Ok(())
    }

    /// Runs the nodes that do not depend on the decoder input, once, on the whole inputs.
    fn encode(&self, inputs: Vec<Value<F>>) -> Result<(Slots<F>, usize)> {
        let spec = self.model.spec();
        let expected = spec.inputs.len() - 1;
        if inputs.len() != expected {
            let names: Vec<&str> = spec
                .inputs
                .iter()
                .map(|i| i.name())
                .filter(|&n| n != self.options.decoder_input)
                .collect();
            return Err(Error::shape(
                "inputs",
                format!(
                    "{expected} inputs ({}), every one but the decoder's",
                    names.join(", ")
                ),
                &[inputs.len()],
            ));
        }
        let n = inputs.first().map(Value::batch).ok_or_else(|| {
            Error::invalid(
                "inputs",
                "decoding needs an encoder input besides the decoder's (a language model generates instead)",
            )
        })?;
        if let Some(other) = inputs.iter().find(|v| v.batch() != n) {
            return Err(Error::shape(
                "inputs",
                format!("{n} examples in every input"),
                &other.grad_shape(),
            ));
        }
        let mut slots: Slots<F> = vec![None; self.stepped.len()];
        let others = (0..spec.inputs.len()).filter(|&s| s != self.decoder);
        for (slot, value) in others.zip(inputs) {
            slots[slot] = Some(value);
        }
        self.run_nodes(&mut slots, false, None)?;
        Ok((slots, n))
    }

    /// Evaluates the nodes that are (`stepped`) or are not (context) part of the decoder, in
    /// order, into `slots`; returns the recurrent nodes' final states.
    fn run_nodes(
        &self,
        slots: &mut Slots<F>,
        stepped: bool,
        state: Option<&ModelState<F>>,
    ) -> Result<ModelState<F>> {
        let spec = self.model.spec();
        let shapes = self.model.shapes();
        let mode = ForwardMode {
            training: false,
            dropout_seed: 0,
        };
        let mut finals: ModelState<F> = vec![Vec::new(); spec.nodes.len()];
        for (n, node) in spec.nodes.iter().enumerate() {
            let slot = self.first_node() + n;
            if self.stepped[slot] != stepped {
                continue;
            }
            let args: Vec<&Value<F>> = shapes.node_inputs[n]
                .iter()
                .map(|&s| slots[s].as_ref().expect("nodes read earlier slots"))
                .collect();
            let initial = state.map(|s| s[n].as_slice()).filter(|s| !s.is_empty());
            let out = self
                .model
                .node(&node.name)
                .expect("the spec names the model's nodes")
                .forward(&node.name, &args, mode, initial)?;
            slots[slot] = Some(out.value);
            finals[n] = out.final_states;
        }
        Ok(finals)
    }

    /// One decoder step for every row: `tokens` `[rows]` in, logits `[rows, vocabulary]` out.
    fn step(
        &self,
        context: &Slots<F>,
        tokens: &[u32],
        state: Option<&ModelState<F>>,
        cancel: &AtomicBool,
    ) -> Result<(Array2<F>, ModelState<F>)> {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::invalid("cancel", "stopped before its last step"));
        }
        let rows = tokens.len();
        let mut slots = context.clone();
        slots[self.decoder] = Some(Value::Tokens {
            ids: Array2::from_shape_vec((rows, 1), tokens.to_vec()).expect("[rows, 1]"),
            lengths: Arc::from(vec![1; rows]),
        });
        let finals = self.run_nodes(&mut slots, true, state)?;
        let logits = slots
            .pop()
            .flatten()
            .expect("the output is a decoder node")
            .float_data("output")?;
        let width = logits.len() / rows.max(1);
        let logits = logits
            .into_shape_with_order((rows, width))
            .expect("[rows, 1, vocabulary]");
        Ok((logits, finals))
    }

    fn check_tokens(&self, vocabulary: usize) -> Result<()> {
        for (name, id) in [("start", self.options.start), ("stop", self.options.stop)] {
            if id as usize >= vocabulary {
                return Err(Error::invalid(
                    name,
                    format!("token {id} is out of range for the output's {vocabulary} classes"),
                ));
            }
        }
        Ok(())
    }

    /// Greedy: every row takes its most likely token.
    fn greedy(&self, (context, n): &(Slots<F>, usize), cancel: &AtomicBool) -> Result<Decoded> {
        let n = *n;
        let mut tokens = vec![self.options.start; n];
        let mut ids = vec![Vec::new(); n];
        let mut log_probs = vec![0.0; n];
        let mut open = vec![true; n];
        let mut state = None;
        for _ in 0..self.options.max_steps {
            let (logits, finals) = self.step(context, &tokens, state.as_ref(), cancel)?;
            for b in 0..n {
                if !open[b] {
                    continue;
                }
                let log_p = log_softmax(logits.row(b).iter().copied());
                let best = argmax(&log_p);
                log_probs[b] += log_p[best];
                tokens[b] = best as u32;
                if tokens[b] == self.options.stop {
                    open[b] = false;
                } else {
                    ids[b].push(tokens[b]);
                }
            }
            state = Some(finals);
            if !open.contains(&true) {
                break;
            }
        }
        Ok(Decoded { ids, log_probs })
    }

    /// Beam search over `k` hypotheses per example, rows `b·k..(b+1)·k` of one batch.
    fn beam(&self, (context, n): &(Slots<F>, usize), cancel: &AtomicBool) -> Result<Decoded> {
        let (n, k) = (*n, self.options.beam_width);
        let rows: Vec<usize> = (0..n).flat_map(|b| std::iter::repeat_n(b, k)).collect();
        let context: Slots<F> = context
            .iter()
            .map(|v| v.as_ref().map(|v| select_rows(v, &rows)))
            .collect();
        let mut beams: Vec<Beam> = (0..n).map(|_| Beam::new()).collect();
        let mut tokens = vec![self.options.start; n * k];
        let mut state: Option<ModelState<F>> = None;
        for _ in 0..self.options.max_steps {
            let (logits, finals) = self.step(&context, &tokens, state.as_ref(), cancel)?;
            let mut parents = Vec::with_capacity(n * k);
            for (b, beam) in beams.iter_mut().enumerate() {
                let rows = logits.slice(ndarray::s![b * k..(b + 1) * k, ..]);
                beam.advance(rows, self.options);
                for j in 0..k {
                    let (parent, token) = beam.row(j, self.options.stop);
                    parents.push(b * k + parent);
                    tokens[b * k + j] = token;
                }
            }
            state = Some(select_state(finals, &parents));
            if beams.iter().all(Beam::done) {
                break;
            }
        }
        let (ids, log_probs) = beams.into_iter().map(|b| b.best(self.options)).unzip();
        Ok(Decoded { ids, log_probs })
    }
}

/// One example's hypotheses.
struct Beam {
    /// Still growing: (ids so far, log-probability); at most `k`, row j of the beam holds the j-th.
    active: Vec<(Vec<u32>, f64)>,
    /// Ended with `stop` (log-probability including it).
    finished: Vec<(Vec<u32>, f64)>,
    /// For each active hypothesis, the row it grew from at the last step.
    parents: Vec<usize>,
}

impl Beam {
    fn new() -> Self {
        Beam {
            active: vec![(Vec::new(), 0.0)],
            finished: Vec::new(),
            parents: vec![0],
        }
    }

    fn done(&self) -> bool {
        self.active.is_empty()
    }

    /// Extends every active hypothesis by every token and keeps the `k` most likely that do not
    /// stop; those that stop among the best `k` candidates are finished. The beam is done once it
    /// holds `k` finished hypotheses, or (ranking by log-probability) once the best finished one
    /// is more likely than every active one can become.
    fn advance<F: Scalar>(&mut self, logits: ndarray::ArrayView2<'_, F>, options: &DecodeOptions) {
        if self.done() {
            return;
        }
        let k = options.beam_width;
        let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
        for (j, (_, log_prob)) in self.active.iter().enumerate() {
            let log_p = log_softmax(logits.row(j).iter().copied());
            candidates.extend(
                log_p
                    .iter()
                    .enumerate()
                    .map(|(token, lp)| (log_prob + lp, j, token as u32)),
            );
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut next = Vec::with_capacity(k);
        let mut parents = Vec::with_capacity(k);
        for (rank, &(score, j, token)) in candidates.iter().enumerate() {
            if next.len() == k {
                break;
            }
            if token == options.stop {
                if rank < k {
                    self.finished.push((self.active[j].0.clone(), score));
                }
                continue;
            }
            let mut ids = self.active[j].0.clone();
            ids.push(token);
            next.push((ids, score));
            parents.push(j);
        }
        self.active = next;
        self.parents = parents;
        let best_finished = self
            .finished
            .iter()
            .map(|f| f.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let best_active = self.active.first().map_or(f64::NEG_INFINITY, |a| a.1);
        let cannot_improve = options.length_penalty == 0.0 && best_finished >= best_active;
        if self.finished.len() >= k || cannot_improve {
            self.active.clear();
        }
    }

    /// The row `j` of the next step grows from, and the token it reads; rows beyond the
    /// active hypotheses repeat row 0 and read `stop`.
    fn row(&self, j: usize, stop: u32) -> (usize, u32) {
        match self.active.get(j) {
            Some((ids, _)) => (self.parents[j], *ids.last().expect("a grown hypothesis")),
            None => (0, stop),
        }
    }

    /// The best hypothesis by the ranking score, unfinished ones included.
    fn best(self, options: &DecodeOptions) -> (Vec<u32>, f64) {
        self.finished
            .into_iter()
            .chain(self.active)
            .max_by(|a, b| {
                ranking_score(&a.0, a.1, options).total_cmp(&ranking_score(&b.0, b.1, options))
            })
            .unwrap_or_default()
    }
}

fn check_options(options: &DecodeOptions) -> Result<()> {
    if options.max_steps == 0 {
        return Err(Error::invalid("maxSteps", "must be >= 1, got 0"));
    }
    if options.beam_width == 0 {
        return Err(Error::invalid("beamWidth", "must be >= 1, got 0"));
    }
    if !options.length_penalty.is_finite() {
        return Err(Error::invalid(
            "lengthPenalty",
            format!("must be finite, got {}", options.length_penalty),
        ));
    }
    Ok(())
}

fn no_decoder_input<F: Scalar>(model: &Model<F>, name: &str) -> Error {
    let tokens: Vec<String> = model
        .shapes()
        .values
        .iter()
        .take(model.spec().inputs.len())
        .filter(|(_, shape)| shape.kind == ValueKind::Tokens)
        .map(|(n, _)| format!("{n:?}"))
        .collect();
    let has = if tokens.is_empty() {
        "the model has no token input".to_owned()
    } else {
        format!("the model's token inputs are {}", tokens.join(", "))
    };
    Error::invalid(
        "decoderInput",
        format!("{name:?} names no token input of the model ({has}); decoding feeds the decoder its own tokens"),
    )
}

/// log softmax of one row of logits, in f64.
fn log_softmax<F: Scalar>(logits: impl Iterator<Item = F>) -> Vec<f64> {
    let z: Vec<f64> = logits.map(|v| v.to_f64_lossy()).collect();
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - log_sum).collect()
}

/// The first index of the largest value.
fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Rows `rows` of a value (each example's context repeated for its beam).
fn select_rows<F: Scalar>(value: &Value<F>, rows: &[usize]) -> Value<F> {
    let lengths = |l: &Arc<[usize]>| -> Arc<[usize]> { rows.iter().map(|&r| l[r]).collect() };
    match value {
        Value::Sequence { data, lengths: l } => Value::Sequence {
            data: data.select(Axis(0), rows),
            lengths: lengths(l),
        },
        Value::Tokens { ids, lengths: l } => Value::Tokens {
            ids: ids.select(Axis(0), rows),
            lengths: lengths(l),
        },
        Value::Vector(v) => Value::Vector(v.select(Axis(0), rows)),
    }
}

/// The carried states of rows `rows`, in that order.
fn select_state<F: Scalar>(state: ModelState<F>, rows: &[usize]) -> ModelState<F> {
    state
        .into_iter()
        .map(|node| {
            node.into_iter()
                .map(|s| LayerState {
                    h: s.h.select(Axis(0), rows),
                    c: s.c.map(|c| c.select(Axis(0), rows)),
                })
                .collect()
        })
        .collect()
}
