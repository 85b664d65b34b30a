//! Layers: recurrent (LSTM, GRU, simple RNN) and feed-forward (dense, embedding,
//! dropout). Each layer is a config (plain data), a parameter set (named like
//! PyTorch), a forward pass that returns what backward needs, and an exact
//! backward pass (through time, for the recurrent ones).

pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod gru;
pub mod lstm;
mod names;
pub mod recurrent;
pub mod rnn;
pub mod sequence;

pub use dense::{Activation, Dense, DenseCache, DenseConfig, DenseGrads, DenseParams};
pub use dropout::{Dropout, DropoutCache};
pub use embedding::{Embedding, EmbeddingConfig, EmbeddingParams};
pub use gru::{Gru, GruCache, GruConfig, GruGrads, GruParams};

pub use lstm::{Lstm, LstmCache, LstmConfig, LstmGrads, LstmParams, LstmVariant};
pub use rnn::{RnnActivation, RnnCache, RnnConfig, RnnGrads, RnnParams, SimpleRnn};
pub use sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
