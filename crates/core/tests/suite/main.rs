//! The core's integration tests, as one test binary: each file is a module, and
//! `common` holds the helpers they share. One binary, not one per file, because
//! each would link its own copy of the monomorphised core (opt-level 2), and the
//! arm64 build under QEMU spent most of its minutes compiling and linking them.
//! (`tests/recycling_alloc.rs` stays its own binary: it installs a global allocator.)

mod common;

mod clip;
mod decode;
mod dense;
mod dropout;
mod embedding;
mod fit_resume;
mod fuzz_loaders;
mod gru_gradcheck;
mod loss;
mod loss_weights;
mod lstm_gradcheck;
mod lstm_inference;
mod model_checkpoint;
mod model_fit;
mod model_graph;
mod model_shapes;
mod optim;
mod rnn_gradcheck;
mod rnn_lockstep;
mod schedule;
mod simd_lanes;
mod stream_step;
mod tensor_file;
mod torch_interop;
