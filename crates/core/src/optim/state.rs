//! Per-parameter buffers shared by the optimizers: sized on the first step,
//! shape-checked on every later one, and named for checkpoints.

use std::collections::BTreeMap;

use ndarray::{ArrayD, ArrayViewMutD};

use super::OptimizerState;
use crate::{Error, Result, Scalar};

/// `slots[i][k]` is buffer `names[k]` of parameter `i`, shaped like the parameter.
#[derive(Debug, Clone)]
pub(crate) struct ParamBuffers<F> {
    names: Vec<&'static str>,
    pub slots: Vec<Vec<ArrayD<F>>>,
}

impl<F: Scalar> ParamBuffers<F> {
    pub fn new(names: Vec<&'static str>) -> Self {
        ParamBuffers {
            names,
            slots: Vec::new(),
        }
    }

    /// Allocates zero buffers on the first call and returns `true`; afterwards
    /// checks that the parameters still have the shapes the buffers were made for.
    pub fn ensure(&mut self, params: &[ArrayViewMutD<'_, F>]) -> Result<bool> {
        if self.names.is_empty() {
            return Ok(false);
        }
        if self.slots.is_empty() {
            self.slots = params
                .iter()
                .map(|p| {
                    self.names
                        .iter()
                        .map(|_| ArrayD::zeros(p.raw_dim()))
                        .collect()
                })
                .collect();
            return Ok(true);
        }
        if self.slots.len() != params.len() {
            return Err(Error::shape(
                "params",
                format!("{} tensors, as in the optimizer state", self.slots.len()),
                &[params.len()],
            ));
        }
        for (i, (slot, p)) in self.slots.iter().zip(params).enumerate() {
            let expected = slot[0].shape();
            if p.shape() != expected {
                return Err(Error::shape(
                    &format!("params[{i}]"),
                    format!("{expected:?} (optimizer state)"),
                    p.shape(),
                ));
            }
        }
        Ok(false)
    }

    pub fn to_state(&self, step: u64) -> OptimizerState<F> {
        let tensors = self
            .slots
            .iter()
            .enumerate()
            .flat_map(|(i, slot)| {
                self.names
                    .iter()
                    .zip(slot)
                    .map(move |(name, buffer)| (format!("{i}.{name}"), buffer.clone()))
            })
            .collect();
        OptimizerState { step, tensors }
    }

    /// Rebuilds the buffers from `"{i}.{name}"` tensors: every parameter index
    /// from 0 up to the largest one present must have every buffer, with one
    /// shape per parameter, and no other tensor may be present. An empty list
    /// resets to the unsized state.
    pub fn load(&mut self, tensors: Vec<(String, ArrayD<F>)>) -> Result<()> {
        let mut by_name: BTreeMap<String, ArrayD<F>> = BTreeMap::new();
        let mut params = 0;
        for (name, tensor) in tensors {
            let Some(index) = self.parse_index(&name) else {
                let reason = format!(
                    "not a buffer of this optimizer (expected `<index>.<{}>`)",
                    self.names.join("|")
                );
                return Err(Error::Key { name, reason });
            };
            params = params.max(index + 1);
            if by_name.contains_key(&name) {
                return Err(Error::Key {
                    name,
                    reason: "listed twice in the optimizer state".into(),
                });
            }
            by_name.insert(name, tensor);
        }
        self.slots = (0..params)
            .map(|i| self.take_slot(i, &mut by_name))
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// The parameter index of a canonical `"{i}.{name}"` with a known buffer name.
    fn parse_index(&self, name: &str) -> Option<usize> {
        let (index, buffer) = name.split_once('.')?;
        let i: usize = index.parse().ok()?;
        (self.names.contains(&buffer) && i.to_string() == index).then_some(i)
    }

    fn take_slot(
        &self,
        i: usize,
        by_name: &mut BTreeMap<String, ArrayD<F>>,
    ) -> Result<Vec<ArrayD<F>>> {
        let mut slot: Vec<ArrayD<F>> = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let key = format!("{i}.{name}");
            let buffer = by_name.remove(&key).ok_or_else(|| Error::Key {
                name: key.clone(),
                reason: "missing from the optimizer state".into(),
            })?;
            if let Some(first) = slot.first() {
                if first.shape() != buffer.shape() {
                    return Err(Error::shape(
                        &key,
                        format!("{:?}", first.shape()),
                        buffer.shape(),
                    ));
                }
            }
            slot.push(buffer);
        }
        Ok(slot)
    }
}

/// `state`, `load_state` and `config` of an optimizer whose state is its `steps` count and
/// its `buffers`, and whose `config` is wrapped as `OptimizerConfig::$variant`.
macro_rules! buffered_state_methods {
    ($variant:ident) => {
        fn state(&self) -> OptimizerState<F> {
            self.buffers.to_state(self.steps)
        }

        fn load_state(&mut self, state: OptimizerState<F>) -> Result<()> {
            self.buffers.load(state.tensors)?;
            self.steps = state.step;
            Ok(())
        }

        fn config(&self) -> OptimizerConfig {
            OptimizerConfig::$variant(self.config)
        }
    };
}
pub(crate) use buffered_state_methods;
