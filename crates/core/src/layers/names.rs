//! The names by which configurations (JSON specs, the JS API) refer to LSTM
//! variants and simple-RNN activations — one table each, for every caller.

use std::str::FromStr;

use super::lstm::LstmVariant;
use super::rnn::RnnActivation;
use crate::Error;

const VARIANTS: [(&str, LstmVariant); 9] = [
    ("vanilla", LstmVariant::Vanilla),
    ("NIG", LstmVariant::Nig),
    ("NFG", LstmVariant::Nfg),
    ("NOG", LstmVariant::Nog),
    ("NIAF", LstmVariant::Niaf),
    ("NOAF", LstmVariant::Noaf),
    ("NP", LstmVariant::Np),
    ("CIFG", LstmVariant::Cifg),
    ("FGR", LstmVariant::Fgr),
];

impl FromStr for LstmVariant {
    type Err = Error;

    /// `"vanilla"`, or the paper's abbreviation (`"NIG"`, ..., `"FGR"`).
    fn from_str(name: &str) -> Result<Self, Error> {
        VARIANTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let known: Vec<&str> = VARIANTS.iter().map(|(n, _)| *n).collect();
                Error::invalid(
                    "variant",
                    format!("unknown LSTM variant '{name}'; expected one of {known:?}"),
                )
            })
    }
}

impl FromStr for RnnActivation {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "tanh" => Ok(RnnActivation::Tanh),
            "relu" => Ok(RnnActivation::Relu),
            other => Err(Error::invalid(
                "activation",
                format!("expected 'tanh' or 'relu', got '{other}'"),
            )),
        }
    }
}
