//! Models: a graph of layers described by plain data ([`spec`]), trained one
//! whole step per call ([`trainer`]).

pub mod checkpoint;
pub mod dataset;
pub mod decode;
pub mod fit;
pub mod graph;
mod metrics;
// Private and re-exported as `model::Model`: the repeated name never shows in a path.
#[allow(clippy::module_inception)]
mod model;
pub mod node;
pub mod objective;
pub mod recurrent_stack;
pub mod sequence_ops;
pub mod shapes;
pub mod spec;
pub mod state;
pub mod stream;
pub mod torch_interop;
pub mod trainer;
pub mod value;

pub use dataset::{check_examples, Batch, Dataset, Order};
pub use fit::{
    evaluate, fit, predict, predict_into, predicted_shape, BatchProgress, EpochProgress,
    Evaluation, FitError, FitEvent, FitObserver, FitOptions, FitRequest, FitRun, FitSummary,
};
pub use graph::{ForwardPass, Gradients, ModelState};
pub use model::Model;
pub use objective::{Labels, Target, TargetView, Weights};
pub use recurrent_stack::LayerState;
pub use shapes::{describe, GraphShapes, ValueKind, ValueShape};
pub use spec::{InputSpec, LossSpec, ModelSpec, NodeSpec, OpSpec};
pub use state::{model_state, node_states, NamedState, NodeState};
pub use stream::Stream;
pub use trainer::{StepReport, Tbptt, Trainer, TrainingPosition, TrainingSpec};
pub use value::Value;
