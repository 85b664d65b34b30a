//! PyTorch `nn.LSTM` / `nn.RNN` state dicts stored as safetensors
//! (`safetensors.torch.save_file(module.state_dict(), path)`), read into and
//! written from one recurrent node of a model.
//!
//! The file holds the node's tensors under PyTorch's names, without a node
//! prefix: `weight_ih_l{k}` `[G·H, X]`, `weight_hh_l{k}` `[G·H, H]`,
//! `bias_ih_l{k}` and `bias_hh_l{k}` `[G·H]` (G = 4 gates i, f, g, o for the
//! LSTM, 1 for the simple RNN), `_reverse` after the layer index for the
//! backward direction. Our LSTM extensions use the same scheme:
//! `peephole_{i,f,o}_l{k}` `[H]` and, for FGR, `weight_gg_l{k}` `[3H, 3H]`.
//!
//! Import is exact: the file must hold precisely the tensors the node has,
//! finite, with its shapes and its scalar type (F32 for an f32 model, F64 for f64;
//! PyTorch's `.double()` before saving gives the latter).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;

use super::checkpoint::{assign_by_name, file_error, torch_metadata};
use super::model::Model;
use super::node::Node;
use crate::tensor_file;
use crate::{Error, Result, Scalar};

/// Loads a state dict from `path` into the LSTM, GRU or RNN node called `node`.
/// Nothing is modified on error: an unknown or non-recurrent node, a missing
/// or unexpected key, or a shape that does not fit the node's configuration
/// (the error names the file, the tensor and both shapes).
pub fn import_state_dict<F: Scalar>(model: &mut Model<F>, node: &str, path: &Path) -> Result<()> {
    let file = tensor_file::load::<F>(path)?;
    check_finite(&file.tensors, path)?;
    let target = recurrent_node_mut(model, node)?;
    check_peepholes(target, &file.tensors, path, node)?;
    let names: Vec<String> = target
        .named_tensors()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let targets = names.into_iter().zip(target.tensors_mut()).collect();
    assign_by_name(targets, &file.tensors, path, &format!("node `{node}`"))
}

/// Writes the tensors of the LSTM, GRU or RNN node called `node` to `path` under
/// PyTorch's names (atomically: a crash leaves the old file or the new one).
pub fn export_state_dict<F: Scalar>(model: &Model<F>, node: &str, path: &Path) -> Result<()> {
    let source = match model.node(node) {
        Some(found @ (Node::Lstm(_) | Node::Rnn(_) | Node::Gru(_))) => found,
        other => return Err(not_recurrent(node, other.is_some())),
    };
    tensor_file::save(path, &source.named_tensors(), &torch_metadata())
}

fn recurrent_node_mut<'a, F: Scalar>(
    model: &'a mut Model<F>,
    node: &str,
) -> Result<&'a mut Node<F>> {
    match model.node_mut(node) {
        Some(found @ (Node::Lstm(_) | Node::Rnn(_) | Node::Gru(_))) => Ok(found),
        other => Err(not_recurrent(node, other.is_some())),
    }
}

fn not_recurrent(node: &str, exists: bool) -> Error {
    if exists {
        Error::invalid(
            node,
            "is not an LSTM, GRU or RNN node: only those have PyTorch state dicts",
        )
    } else {
        Error::Key {
            name: node.to_owned(),
            reason: "the model has no node of this name".into(),
        }
    }
}

/// NaN or ±Infinity in a state dict means a diverged run or a corrupt file;
/// refused as `setWeights` refuses them, rather than imported into the model.
fn check_finite<F: Scalar>(tensors: &BTreeMap<String, ArrayD<F>>, path: &Path) -> Result<()> {
    for (name, tensor) in tensors {
        if let Some((index, value)) = tensor.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(file_error(
                path,
                Some(name),
                format!("non-finite value {value} at flat index {index}"),
            ));
        }
    }
    Ok(())
}

/// The commonest mismatch, a plain `nn.LSTM` file for a node with peepholes,
/// gets an error that says how to fix it rather than just "missing".
fn check_peepholes<F: Scalar>(
    node: &Node<F>,
    tensors: &BTreeMap<String, ArrayD<F>>,
    path: &Path,
    name: &str,
) -> Result<()> {
    let Node::Lstm(stack) = node else {
        return Ok(());
    };
    let has_peepholes = stack
        .layers()
        .iter()
        .any(|layer| layer.config.uses_peepholes());
    let first_peephole = "peephole_i_l0";
    if !has_peepholes || tensors.contains_key(first_peephole) {
        return Ok(());
    }
    Err(file_error(
        path,
        Some(first_peephole),
        format!(
            "missing; node `{name}` has peepholes and the file has none (as PyTorch's nn.LSTM): \
             build the node with `peepholes: false` to import it"
        ),
    ))
}
