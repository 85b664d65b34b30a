//! Checkpoint I/O: round trips (f32/f64, ranks 0–3, metadata), compatibility
//! with the plain safetensors reader, atomic replacement, and every kind of
//! corrupt file giving an error that names the file (and tensor) — never a panic.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use odyssey_core::tensor_file::{from_bytes, load, save, to_bytes};
use odyssey_core::{Error, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::entries;

fn sample<F: Scalar>() -> Vec<(String, ArrayD<F>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    [
        ("lstm.weight_ih_l0", vec![8, 3]),
        ("lstm.bias", vec![8]),
        ("scalar", vec![]),
        ("cube", vec![2, 1, 3]),
        ("empty", vec![0, 4]),
    ]
    .into_iter()
    .map(|(name, shape)| {
        let tensor = ArrayD::from_shape_fn(IxDyn(&shape), |_| {
            F::from_f64_lossy(rng.gen_range(-3.0..3.0))
        });
        (name.to_string(), tensor)
    })
    .collect()
}

fn metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("format".to_string(), "odyssey-rnn/1".to_string()),
        ("config".to_string(), "{\"k\": 1}".to_string()),
    ])
}

fn save_sample<F: Scalar>(path: &Path, tensors: &[(String, ArrayD<F>)]) {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    save(path, &views, &metadata()).unwrap();
}

fn round_trip<F: Scalar>() {
    let dir = common::temp_dir();
    let path = dir.path().join("model.safetensors");
    let tensors = sample::<F>();
    save_sample(&path, &tensors);
    let loaded = load::<F>(&path).unwrap();
    assert_eq!(
        loaded.tensors,
        tensors.into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(loaded.metadata, metadata());
    assert_eq!(
        entries(dir.path()),
        ["model.safetensors"],
        "no temporary file left behind"
    );
}

#[test]
fn f32_round_trip_is_exact() {
    round_trip::<f32>();
}

#[test]
fn f64_round_trip_is_exact() {
    round_trip::<f64>();
}

#[test]
fn non_contiguous_views_are_stored_in_logical_order() {
    let matrix =
        ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let transposed = matrix.t();
    let bytes = to_bytes(&[("t", transposed.view())], &BTreeMap::new()).unwrap();
    let loaded = from_bytes::<f64>(&bytes, "memory").unwrap();
    assert_eq!(loaded.tensors["t"], transposed.to_owned());
}

#[test]
fn files_are_plain_safetensors() {
    let bytes = to_bytes(&[("w", sample::<f32>()[0].1.view())], &metadata()).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("w").unwrap();
    assert_eq!(
        (w.dtype(), w.shape()),
        (safetensors::Dtype::F32, &[8, 3][..])
    );
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["__metadata__"]["format"], "odyssey-rnn/1");
}

#[test]
fn saving_replaces_the_previous_file() {
    let dir = common::temp_dir();
    let path = dir.path().join("model.safetensors");
    save_sample(&path, &sample::<f64>());
    let newer = vec![("only".to_string(), ArrayD::from_elem(IxDyn(&[2]), 7.0_f64))];
    save_sample(&path, &newer);
    assert_eq!(
        load::<f64>(&path).unwrap().tensors,
        newer.into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(entries(dir.path()), ["model.safetensors"]);
}

#[test]
fn a_failed_save_leaves_the_previous_file_and_no_temporary() {
    let dir = common::temp_dir();
    let path = dir.path().join("model.safetensors");
    let original = sample::<f64>();
    save_sample(&path, &original);

    let twice = [("a", original[0].1.view()), ("a", original[1].1.view())];
    let err = save(&path, &twice, &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Key { name, .. } if name == "a"),
        "{err}"
    );
    let reserved = [("__metadata__", original[0].1.view())];
    assert!(matches!(
        save(&path, &reserved, &BTreeMap::new()),
        Err(Error::Key { .. })
    ));

    // The rename fails when the target is a non-empty directory: the temporary file must go.
    let blocked = dir.path().join("blocked");
    fs::create_dir_all(blocked.join("inside")).unwrap();
    let err = save(&blocked, &[("x", original[0].1.view())], &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("blocked")),
        "{err}"
    );

    assert_eq!(
        load::<f64>(&path).unwrap().tensors,
        original.into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(entries(dir.path()), ["blocked", "model.safetensors"]);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = load::<f32>(Path::new("/nonexistent/dir/model.safetensors")).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == "/nonexistent/dir/model.safetensors"),
        "{err}"
    );
}

/// A hand-written file: the JSON header, padded as given, then `data_len` zero bytes.
fn handmade(header: &str, data_len: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data_len));
    bytes
}

/// Asserts a checkpoint error naming the source and (if given) the tensor, whose reason contains `words`.
fn assert_checkpoint_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    tensor: Option<&str>,
    words: &str,
) {
    let err = result.unwrap_err();
    let message = err.to_string();
    match &err {
        Error::Checkpoint {
            path,
            tensor: t,
            reason,
        } => {
            assert_eq!(path, "ckpt", "{message}");
            assert_eq!(t.as_deref(), tensor, "{message}");
            assert!(reason.contains(words), "expected `{words}` in: {message}");
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[test]
fn corrupt_files_are_errors_naming_file_and_tensor() {
    let good = to_bytes(&[("w", sample::<f32>()[0].1.view())], &BTreeMap::new()).unwrap();

    assert_checkpoint_error(from_bytes::<f32>(&[], "ckpt"), None, "too short");
    assert_checkpoint_error(from_bytes::<f32>(&good[..5], "ckpt"), None, "too short");
    assert_checkpoint_error(
        from_bytes::<f32>(&good[..good.len() - 4], "ckpt"),
        Some("w"),
        "outside",
    );
    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_checkpoint_error(from_bytes::<f32>(&huge_header, "ckpt"), None, "exceeds");
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade("not json", 0), "ckpt"),
        None,
        "JSON",
    );

    let out_of_range = r#"{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(out_of_range, 16), "ckpt"),
        Some("w"),
        "outside",
    );
    let size_mismatch = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(size_mismatch, 8), "ckpt"),
        Some("w"),
        "needs 12 bytes",
    );
    let integer = r#"{"ids":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(integer, 8), "ckpt"),
        Some("ids"),
        "I32",
    );
    let unknown_dtype = r#"{"w":{"dtype":"Q3","shape":[2],"data_offsets":[0,8]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(unknown_dtype, 8), "ckpt"),
        Some("w"),
        "malformed",
    );
    let overflow = r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(overflow, 8), "ckpt"),
        Some("w"),
        "overflows",
    );
    let bad_metadata = r#"{"__metadata__":{"n":1}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(bad_metadata, 0), "ckpt"),
        None,
        "strings",
    );

    // Whole-file rules checked by the safetensors crate: a gap between tensors, trailing data.
    let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(gap, 12), "ckpt"),
        Some("b"),
        "offset",
    );
    let trailing = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert_checkpoint_error(
        from_bytes::<f32>(&handmade(trailing, 8), "ckpt"),
        None,
        "not fully covered",
    );
}

#[test]
fn a_checkpoint_of_the_other_precision_is_rejected() {
    let bytes = to_bytes(&[("w", sample::<f64>()[0].1.view())], &BTreeMap::new()).unwrap();
    assert_checkpoint_error(
        from_bytes::<f32>(&bytes, "ckpt"),
        Some("w"),
        "dtype F64, expected F32",
    );
}

/// Thousands of random corruptions of a valid file: each must give Ok or Err, never a panic.
#[test]
fn random_corruption_never_panics() {
    let good = to_bytes(
        &sample::<f32>()
            .iter()
            .map(|(n, t)| (n.as_str(), t.view()))
            .collect::<Vec<_>>(),
        &metadata(),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut rejected = 0;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        match rng.gen_range(0..3) {
            0 => bytes.truncate(rng.gen_range(0..good.len())),
            1 => {
                let i = rng.gen_range(0..bytes.len().min(300));
                bytes[i] = rng.gen();
            }
            _ => {
                let i = rng.gen_range(0..bytes.len());
                bytes.insert(i, rng.gen());
            }
        }
        rejected += usize::from(from_bytes::<f32>(&bytes, "ckpt").is_err());
    }
    assert!(
        rejected > 1500,
        "most corruptions are detected, got {rejected}"
    );
}
