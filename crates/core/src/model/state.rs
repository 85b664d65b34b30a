//! A model's recurrent state as users read and set it (`getState` /
//! `setState`): per recurrent node, h (and c) `[entries, batch, H]`, entries
//! layer-major then direction, PyTorch's `(h_n, c_n)` layout.

use ndarray::{Array3, Axis};

use super::graph::ModelState;
use super::model::Model;
use super::recurrent_stack::LayerState;
use super::spec::RecurrentSpec;
use crate::params::NamedValues;
use crate::{Error, Result, Scalar};

/// One recurrent node's state.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState<F> {
    pub node: String,
    /// `[entries, batch, H]`
    pub h: Array3<F>,
    /// `[entries, batch, H]`, for layers with a cell state (LSTM).
    pub c: Option<Array3<F>>,
}

/// A state given by name, as [`model_state`] checks it.
#[derive(Debug, Clone, Copy)]
pub struct NamedState<'a, F> {
    pub node: &'a str,
    pub h: NamedValues<'a, F>,
    pub c: Option<NamedValues<'a, F>>,
}

/// The recurrent nodes of `model`: index, name, options, whether they carry c.
fn recurrent_nodes<F: Scalar>(
    model: &Model<F>,
) -> impl Iterator<Item = (usize, &str, &RecurrentSpec, bool)> {
    model
        .spec()
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(n, node)| {
            let (recurrent, has_cell) = node.op.recurrent()?;
            Some((n, node.name.as_str(), recurrent, has_cell))
        })
}

/// Every recurrent node's entry of `state`, stacked `[entries, batch, H]`.
pub fn node_states<F: Scalar>(model: &Model<F>, state: &ModelState<F>) -> Vec<NodeState<F>> {
    let stack = |parts: Vec<_>| ndarray::stack(Axis(0), &parts).expect("entries share a shape");
    recurrent_nodes(model)
        .filter(|(n, ..)| !state[*n].is_empty())
        .map(|(n, name, _, has_cell)| NodeState {
            node: name.to_owned(),
            h: stack(state[n].iter().map(|s| s.h.view()).collect()),
            c: has_cell.then(|| {
                stack(
                    state[n]
                        .iter()
                        .map(|s| s.c.as_ref().expect("a cell state").view())
                        .collect(),
                )
            }),
        })
        .collect()
}

/// The state to continue from: the nodes in `given`, checked like weights
/// (a recurrent node, h and c of its shape `[entries, batch, H]` with one
/// batch across them, finite values); every other recurrent node keeps its
/// `current` state when that has the same batch, and starts from zeros otherwise.
pub fn model_state<F: Scalar>(
    model: &Model<F>,
    given: &[NamedState<'_, F>],
    current: Option<&ModelState<F>>,
) -> Result<ModelState<F>> {
    let Some(first) = given.first() else {
        return Err(Error::invalid("state", "name at least one recurrent node"));
    };
    let batch = first.h.shape.get(1).copied().unwrap_or(0);
    let current_batch = current
        .and_then(|s| s.iter().flatten().next())
        .map(|s| s.h.nrows());
    let mut state: ModelState<F> = vec![Vec::new(); model.spec().nodes.len()];
    for (n, _, recurrent, has_cell) in recurrent_nodes(model) {
        state[n] = match current {
            Some(current) if current_batch == Some(batch) => current[n].clone(),
            _ => zeros(recurrent, has_cell, batch),
        };
    }
    for named in given {
        let (n, recurrent, has_cell) = find_node(model, named.node)?;
        state[n] = checked_entries(named, recurrent, has_cell, batch)?;
    }
    Ok(state)
}

fn find_node<'m, F: Scalar>(
    model: &'m Model<F>,
    name: &str,
) -> Result<(usize, &'m RecurrentSpec, bool)> {
    recurrent_nodes(model)
        .find(|(_, n, ..)| *n == name)
        .map(|(n, _, recurrent, has_cell)| (n, recurrent, has_cell))
        .ok_or_else(|| {
            let known: Vec<&str> = recurrent_nodes(model).map(|(_, n, ..)| n).collect();
            Error::Key {
                name: "state".to_owned(),
                reason: format!(
                    "unknown recurrent node '{name}'; this model's recurrent nodes are {}",
                    known.join(", ")
                ),
            }
        })
}

fn zeros<F: Scalar>(recurrent: &RecurrentSpec, has_cell: bool, batch: usize) -> Vec<LayerState<F>> {
    let zero = || ndarray::Array2::zeros((batch, recurrent.hidden_size));
    (0..recurrent.entries())
        .map(|_| LayerState {
            h: zero(),
            c: has_cell.then(zero),
        })
        .collect()
}

/// `named`'s h and c as one state per entry, once they are checked.
fn checked_entries<F: Scalar>(
    named: &NamedState<'_, F>,
    recurrent: &RecurrentSpec,
    has_cell: bool,
    batch: usize,
) -> Result<Vec<LayerState<F>>> {
    let expected = [recurrent.entries(), batch, recurrent.hidden_size];
    let h = named.h.checked(&expected)?;
    let c = match (&named.c, has_cell) {
        (Some(c), true) => Some(c.checked(&expected)?),
        (None, false) => None,
        (Some(c), false) => {
            return Err(Error::invalid(
                c.name,
                "this node has no cell state; leave c out",
            ));
        }
        (None, true) => {
            return Err(Error::invalid(
                named.h.name.trim_end_matches(".h"),
                format!("an lstm node's state is h and c, each {expected:?}; c is missing"),
            ));
        }
    };
    Ok((0..recurrent.entries())
        .map(|i| LayerState {
            h: h.index_axis(Axis(0), i)
                .to_owned()
                .into_dimensionality()
                .expect("rank 2"),
            c: c.as_ref().map(|c| {
                c.index_axis(Axis(0), i)
                    .to_owned()
                    .into_dimensionality()
                    .expect("rank 2")
            }),
        })
        .collect())
}
