//! Loss functions: each returns the loss and its gradient with respect to the prediction.
