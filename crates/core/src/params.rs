//! A uniform view of a layer's parameters (and, with the same type, of its
//! gradients) so that optimizers, clipping and checkpoints can treat every
//! layer alike, and the one set of rules by which tensors are replaced by name.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::{Error, Result, Scalar};

/// A set of named tensors. Names are PyTorch's without the layer suffix
/// (`weight_ih`, `bias_hh`, ...); the model appends `_l{k}` / `_reverse`.
///
/// The order of `tensors` and `tensors_mut` is fixed and identical, and a
/// gradient set lists the same names with the same shapes as its parameters.
/// Tensors a configuration does not use are left out (zero-sized arrays are
/// never listed).
pub trait ParamSet<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)>;
    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)>;
}

/// The most weights a layer or a model may hold: 2^28, 1 GiB in float32 (4 GiB
/// with Adam's gradients and moments). Far above any recurrent model a CPU
/// trains, it turns a size typo (`hiddenSize: 2 ** 31`) into an error instead
/// of an allocation that aborts the process.
pub const MAX_PARAMETERS: usize = 1 << 28;

/// `count` if it is at most [`MAX_PARAMETERS`] (`None`: it overflowed `usize`),
/// else an `Invalid` error naming `name` and saying which sizes (`what`) need that many.
pub fn check_parameter_count(name: &str, what: &str, count: Option<usize>) -> Result<usize> {
    match count {
        Some(count) if count <= MAX_PARAMETERS => Ok(count),
        _ => Err(Error::invalid(
            name,
            format!(
                "{what} need {} weights, and a model or layer may hold at most {MAX_PARAMETERS} (2^28); check the sizes",
                count.map_or_else(|| format!("more than {}", usize::MAX), |c| format!("at least {c}"))
            ),
        )),
    }
}

/// One tensor given by name: its declared shape and its values, row-major.
#[derive(Debug, Clone, Copy)]
pub struct NamedValues<'a, F> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [F],
}

/// Replaces tensors by name (any subset of `targets`). Every source must name
/// a target, declare the target's shape, hold that many values and only finite
/// ones; nothing changes unless all of them do. `owner` says whose names the
/// unknown-key message lists (`"this layer"`, `"this model"`).
pub fn assign_named<F: Scalar>(
    mut targets: Vec<(String, ArrayViewMutD<'_, F>)>,
    sources: &[NamedValues<'_, F>],
    owner: &str,
) -> Result<()> {
    let mut checked = Vec::with_capacity(sources.len());
    for source in sources {
        let index = targets
            .iter()
            .position(|(name, _)| name == source.name)
            .ok_or_else(|| unknown_name(source.name, &targets, owner))?;
        checked.push((index, source.checked(targets[index].1.shape())?));
    }
    for (index, values) in checked {
        targets[index].1.assign(&values);
    }
    Ok(())
}

fn unknown_name<F>(name: &str, targets: &[(String, ArrayViewMutD<'_, F>)], owner: &str) -> Error {
    let known: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    Error::Key {
        name: "weights".to_owned(),
        reason: format!("unknown weight '{name}'; {owner} has {}", known.join(", ")),
    }
}

impl<'a, F: Scalar> NamedValues<'a, F> {
    /// The values as a tensor of `expected` shape, once the declared shape is
    /// `expected`, the data holds that many values and all are finite.
    pub fn checked(&self, expected: &[usize]) -> Result<ArrayViewD<'a, F>> {
        if self.shape != expected {
            return Err(Error::shape(self.name, format!("{expected:?}"), self.shape));
        }
        let data_name = format!("{}.data", self.name);
        let count: usize = expected.iter().product();
        if self.data.len() != count {
            return Err(Error::shape(
                &data_name,
                format!("{expected:?} ({count} elements)"),
                &[self.data.len()],
            ));
        }
        if let Some((index, value)) = self.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                name: data_name,
                index,
                value: value.to_f64_lossy(),
            });
        }
        Ok(ArrayViewD::from_shape(expected, self.data).expect("length checked above"))
    }
}
