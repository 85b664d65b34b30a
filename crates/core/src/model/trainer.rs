//! One training step as one call — forward through the whole model, loss,
//! backward, clipping, optimizer update — and truncated BPTT built on it.

use ndarray::{s, Array1, ArrayD, ArrayViewD, Axis, Slice};
use serde::{Deserialize, Serialize};

use super::graph::{Gradients, ModelState};
use super::model::Model;
use super::objective::{loss_and_grad, Labels, Target, TargetView};
use super::spec::LossSpec;
use super::value::Value;
use crate::layers::BackwardOptions;
use crate::optim::{
    self, clip_gradients, ClipConfig, LrSchedule, Optimizer, OptimizerConfig, OptimizerState,
};
use crate::{Error, Result, Scalar};

/// How a model is trained (plain data; part of a checkpoint's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingSpec {
    pub optimizer: OptimizerConfig,
    pub learning_rate: f64,
    #[serde(default)]
    pub schedule: LrSchedule,
    #[serde(default)]
    pub clip: ClipConfig,
    /// Clamp the error flowing back through every recurrence to [−v, v] at every step.
    #[serde(default)]
    pub recurrent_clip: Option<f64>,
    /// The crossEntropy loss's weight of each class (PyTorch's `weight=`), finite and
    /// ≥ 0; the training loss only, like Keras' `class_weight`: evaluation reports
    /// the loss every class weighs 1 in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub loss: f64,
    /// Global L2 norm of all gradients before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
    /// False when the loss or a gradient was not finite: the weights were left as they were.
    pub applied: bool,
    pub learning_rate: f64,
}

/// Where a run of `fit` stands: what a checkpoint stores so that `fit` goes on
/// exactly where it stopped (the batches of an epoch and their order follow
/// from the batch size, the shuffle flag, the seed and the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPosition {
    /// Epochs finished.
    pub epochs: usize,
    /// Batches of epoch `epochs` already trained (0 when it has not started).
    pub batch: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
}

/// Truncated BPTT (Williams & Peng): every `k1` steps, backpropagate through the last `k2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tbptt {
    pub k1: usize,
    pub k2: usize,
}

pub struct Trainer<F: Scalar> {
    pub model: Model<F>,
    spec: TrainingSpec,
    optimizer: Box<dyn Optimizer<F>>,
    /// Updates applied so far (drives the schedule and the dropout seeds).
    step: u64,
    /// Steps skipped because the loss or a gradient was not finite.
    skipped: u64,
    /// Where `fit` left off; `None` until a fit has trained a batch.
    position: Option<TrainingPosition>,
}

impl<F: Scalar> Trainer<F> {
    pub fn new(model: Model<F>, spec: TrainingSpec) -> Result<Self> {
        spec.schedule.validate()?;
        spec.clip.validate()?;
        check_learning_rate(spec.learning_rate)?;
        BackwardOptions {
            recurrent_clip: spec.recurrent_clip,
        }
        .checked_recurrent_clip()?;
        check_class_weights(spec.class_weights.as_deref(), model.spec().loss)?;
        let optimizer = optim::build(&spec.optimizer)?;
        Ok(Trainer {
            model,
            spec,
            optimizer,
            step: 0,
            skipped: 0,
            position: None,
        })
    }

    pub fn spec(&self) -> &TrainingSpec {
        &self.spec
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn skipped_count(&self) -> u64 {
        self.skipped
    }

    pub fn position(&self) -> Option<TrainingPosition> {
        self.position
    }

    /// Moves `fit`'s bookmark (fit does it after every batch and epoch; a checkpoint restores it).
    pub fn set_position(&mut self, position: Option<TrainingPosition>) {
        self.position = position;
    }

    /// Replaces the base learning rate (the schedule scales it from the next update on).
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        check_learning_rate(learning_rate)?;
        self.spec.learning_rate = learning_rate;
        Ok(())
    }

    pub fn optimizer_state(&self) -> OptimizerState<F> {
        self.optimizer.state()
    }

    /// Restores a checkpoint's counters and optimizer state.
    pub fn restore(&mut self, step: u64, skipped: u64, state: OptimizerState<F>) -> Result<()> {
        self.optimizer.load_state(state)?;
        self.step = step;
        self.skipped = skipped;
        Ok(())
    }

    fn backward_options(&self) -> BackwardOptions<F> {
        BackwardOptions {
            recurrent_clip: self.spec.recurrent_clip.map(F::from_f64_lossy),
        }
    }

    /// Forward, loss and backward without touching the weights.
    /// `labels`: the target (`&Target`), or the target and its weights (`Labels`).
    /// `first_step`: sequence steps before it do not count in the loss.
    pub fn gradients<'a>(
        &self,
        inputs: Vec<Value<F>>,
        labels: impl Into<Labels<'a, F>>,
        initial: Option<&ModelState<F>>,
        first_step: usize,
    ) -> Result<(f64, Gradients<F>, ModelState<F>)>
    where
        F: 'a,
    {
        let mut pass = self.model.forward(inputs, true, self.step, initial)?;
        pass.keep_only_output();
        let (loss, doutput) = loss_and_grad(
            self.model.spec().loss,
            self.spec.class_weights.as_deref(),
            pass.output(),
            labels.into(),
            first_step,
        )?;
        let final_states = std::mem::take(&mut pass.final_states);
        let grads = self
            .model
            .backward(pass, doutput, &self.backward_options())?;
        Ok((loss, grads, final_states))
    }

    /// Clips and applies gradients, unless the loss or a gradient is not finite.
    fn apply(&mut self, loss: f64, mut grads: Vec<ArrayD<F>>) -> Result<StepReport> {
        let learning_rate = self
            .spec
            .schedule
            .learning_rate(self.spec.learning_rate, self.step);
        let mut views: Vec<_> = grads.iter_mut().map(|g| g.view_mut()).collect();
        let report = clip_gradients(&mut views, &self.spec.clip)?;
        let applied = loss.is_finite() && report.is_finite();
        if applied {
            let grad_views: Vec<ArrayViewD<'_, F>> = grads.iter().map(|g| g.view()).collect();
            self.optimizer.step(
                &mut self.model.trainable_tensors_mut(),
                &grad_views,
                learning_rate,
            )?;
            self.step += 1;
        } else {
            self.skipped += 1;
        }
        Ok(StepReport {
            loss,
            grad_norm: report.pre_clip_norm,
            clipped: report.clipped,
            applied,
            learning_rate,
        })
    }

    /// One full training step on a batch.
    pub fn train_step<'a>(
        &mut self,
        inputs: Vec<Value<F>>,
        labels: impl Into<Labels<'a, F>>,
    ) -> Result<StepReport>
    where
        F: 'a,
    {
        let (loss, grads, _) = self.gradients(inputs, labels, None, 0)?;
        self.apply(loss, grads.params)
    }

    /// Truncated BPTT over one batch of equal-length sequences: windows end every
    /// `k1` steps, each reaches back `k2` steps, each scores its last `k1` steps
    /// and is one update. The state is carried (not the gradient) from window to
    /// window; k1 = k2 = time is exactly [`Trainer::train_step`].
    /// Returns one report per window.
    pub fn train_tbptt<'a>(
        &mut self,
        inputs: Vec<Value<F>>,
        labels: impl Into<Labels<'a, F>>,
        tbptt: Tbptt,
    ) -> Result<Vec<StepReport>>
    where
        F: 'a,
    {
        let Labels { target, weights } = labels.into();
        let time = check_tbptt(&inputs, tbptt)?;
        // A vector output is scored once, at the end: one window over the last k2 steps.
        let tbptt = if self.model.output_is_sequence() {
            tbptt
        } else {
            Tbptt {
                k1: time,
                k2: tbptt.k2,
            }
        };
        let first_start = tbptt.k1.min(time).saturating_sub(tbptt.k2);
        let mut state_at_start = match first_start {
            0 => None,
            lead => Some(
                self.model
                    .forward(slice_time(&inputs, 0, lead), false, self.step, None)?
                    .final_states,
            ),
        };
        let mut reports = Vec::new();
        let mut end = 0;
        while end < time {
            end = (end + tbptt.k1).min(time);
            let start = end.saturating_sub(tbptt.k2);
            let window = slice_time(&inputs, start, end);
            let window_target = slice_target(
                target.clone(),
                self.model.output_is_sequence(),
                time,
                start,
                end,
            );
            let window_weights = weights.map(|w| w.slice_time(start, end));
            let window_labels = Labels {
                target: window_target.view(),
                weights: window_weights.as_ref(),
            };
            let scored_from = end.saturating_sub(tbptt.k1).max(start) - start;
            let (loss, grads, finals) =
                self.gradients(window, window_labels, state_at_start.as_ref(), scored_from)?;
            let next_start = (end + tbptt.k1).min(time).saturating_sub(tbptt.k2);
            // The carried state is computed with the weights of this window, before its update.
            let next_state = if next_start == end {
                Some(finals)
            } else if next_start == start {
                state_at_start.clone()
            } else {
                let lead = slice_time(&inputs, start, next_start);
                Some(
                    self.model
                        .forward(lead, false, self.step, state_at_start.as_ref())?
                        .final_states,
                )
            };
            reports.push(self.apply(loss, grads.params)?);
            state_at_start = next_state;
        }
        Ok(reports)
    }

    /// ‖∂J/∂c(k)‖ (LSTM) / ‖∂J/∂h(k)‖ (simple RNN) for every step k of every
    /// recurrent layer entry, for the model's loss on this batch; weights untouched.
    pub fn gradient_flow<'a>(
        &self,
        inputs: Vec<Value<F>>,
        labels: impl Into<Labels<'a, F>>,
    ) -> Result<Vec<(String, String, Array1<F>)>>
    where
        F: 'a,
    {
        Ok(self.gradients(inputs, labels, None, 0)?.1.step_grad_norms)
    }
}

/// Class weights are finite, ≥ 0 and for the crossEntropy loss (their count is
/// checked against the output's classes with the first batch).
fn check_class_weights(class_weights: Option<&[f64]>, loss: LossSpec) -> Result<()> {
    let Some(weights) = class_weights else {
        return Ok(());
    };
    if loss != LossSpec::CrossEntropy {
        return Err(Error::invalid(
            "classWeights",
            format!("only the crossEntropy loss weighs classes, not {loss:?}"),
        ));
    }
    if weights.is_empty() {
        return Err(Error::invalid("classWeights", "needs one weight per class"));
    }
    match weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        Some(k) => Err(Error::invalid(
            &format!("classWeights[{k}]"),
            format!("must be finite and >= 0, got {}", weights[k]),
        )),
        None => Ok(()),
    }
}

fn check_learning_rate(learning_rate: f64) -> Result<()> {
    if learning_rate.is_finite() && learning_rate >= 0.0 {
        return Ok(());
    }
    Err(Error::invalid(
        "learningRate",
        format!("must be finite and >= 0, got {learning_rate}"),
    ))
}

fn check_tbptt<F: Scalar>(inputs: &[Value<F>], tbptt: Tbptt) -> Result<usize> {
    if tbptt.k1 == 0 || tbptt.k2 < tbptt.k1 {
        return Err(Error::invalid(
            "tbptt",
            format!(
                "needs 1 <= k1 <= k2, got k1 = {}, k2 = {}",
                tbptt.k1, tbptt.k2
            ),
        ));
    }
    let mut time = None;
    for value in inputs {
        let (t, lengths) = match value {
            Value::Sequence { data, lengths } => (data.dim().1, lengths),
            Value::Tokens { ids, lengths } => (ids.dim().1, lengths),
            Value::Vector(_) => continue,
        };
        if lengths.iter().any(|&l| l != t) || time.is_some_and(|prev| prev != t) {
            return Err(Error::invalid(
                "lengths",
                "truncated BPTT needs sequences that all fill the time axis",
            ));
        }
        time = Some(t);
    }
    time.ok_or_else(|| Error::invalid("tbptt", "needs at least one sequence input"))
}

fn slice_time<F: Scalar>(inputs: &[Value<F>], start: usize, end: usize) -> Vec<Value<F>> {
    let lengths: std::sync::Arc<[usize]> = vec![end - start; inputs[0].batch()].into();
    inputs
        .iter()
        .map(|v| match v {
            Value::Sequence { data, .. } => Value::Sequence {
                data: data.slice(s![.., start..end, ..]).to_owned(),
                lengths: lengths.clone(),
            },
            Value::Tokens { ids, .. } => Value::Tokens {
                ids: ids.slice(s![.., start..end]).to_owned(),
                lengths: lengths.clone(),
            },
            Value::Vector(_) => v.clone(),
        })
        .collect()
}

/// The part of the target a window scores: its steps for sequence outputs;
/// a vector output's target only at the final window.
fn slice_target<F: Scalar>(
    target: TargetView<'_, F>,
    sequence_output: bool,
    time: usize,
    start: usize,
    end: usize,
) -> Target<F> {
    if !sequence_output {
        return target.to_owned();
    }
    match target {
        TargetView::Values(v) => {
            Target::Values(v.slice_axis(Axis(1), Slice::from(start..end)).to_owned())
        }
        TargetView::Classes(c) => Target::Classes(
            c.chunks(time)
                .flat_map(|row| row[start..end].iter().copied())
                .collect(),
        ),
    }
}
