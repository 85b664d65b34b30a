//! Named tensors on disk as safetensors (<https://huggingface.co/docs/safetensors>):
//! an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`,
//! then the raw little-endian data. PyTorch, JAX and NumPy read these files.
//!
//! Saving is atomic: the bytes go to a temporary file in the target's
//! directory, which is flushed to disk and renamed over the target, and the
//! directory entry is flushed too. A crash at any point leaves either the
//! previous file or the new one, never a mixture.
//!
//! Loading never trusts the file: truncation, a header length past the end,
//! offsets outside the data, sizes that disagree with shapes and unexpected
//! dtypes are all errors naming the file (and the tensor, when one is to blame).

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::{Error, Result, Scalar};

/// The header key safetensors reserves for the string metadata.
const METADATA_KEY: &str = "__metadata__";
/// Size of the header-length prefix.
const LENGTH_PREFIX: usize = 8;

/// The contents of a tensor file.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<F> {
    pub tensors: BTreeMap<String, ArrayD<F>>,
    pub metadata: BTreeMap<String, String>,
}

/// Writes `tensors` (any rank, stored as `F`'s dtype: F32 or F64) and
/// `metadata` to `path` atomically, replacing any previous file.
pub fn save<F: Scalar, S: AsRef<str>>(
    path: &Path,
    tensors: &[(S, ArrayViewD<'_, F>)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let bytes = to_bytes(tensors, metadata)?;
    write_atomically(path, &bytes)
}

/// Reads a tensor file whose tensors are all of `F`'s dtype.
pub fn load<F: Scalar>(path: &Path) -> Result<Checkpoint<F>> {
    let bytes = fs::read(path).map_err(|e| io_error(path, "cannot read", e))?;
    from_bytes(&bytes, &path.display().to_string())
}

/// The safetensors encoding of `tensors` and `metadata`. Names must be unique
/// and must not be `__metadata__`.
pub fn to_bytes<F: Scalar, S: AsRef<str>>(
    tensors: &[(S, ArrayViewD<'_, F>)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let dtype = dtype_of::<F>()?;
    let mut encoded: BTreeMap<&str, Encoded> = BTreeMap::new();
    for (name, tensor) in tensors {
        let name = name.as_ref();
        if name == METADATA_KEY {
            return Err(Error::Key {
                name: name.into(),
                reason: "is reserved for the metadata".into(),
            });
        }
        if encoded.insert(name, Encoded::new(dtype, tensor)).is_some() {
            return Err(Error::Key {
                name: name.into(),
                reason: "listed twice".into(),
            });
        }
    }
    let metadata: Option<HashMap<String, String>> = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    safetensors::serialize(
        encoded.iter().map(|(name, tensor)| (*name, tensor)),
        metadata,
    )
    .map_err(|e| Error::invalid("checkpoint", e.to_string()))
}

/// Decodes a safetensors buffer; `source` names it in errors (usually the file path).
pub fn from_bytes<F: Scalar>(bytes: &[u8], source: &str) -> Result<Checkpoint<F>> {
    let expected = dtype_of::<F>()?;
    check_header(bytes, expected, source)?;
    let (header_len, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| library_error(source, e))?;
    let data = &bytes[LENGTH_PREFIX + header_len..];
    let tensors = header
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let (start, end) = info.data_offsets;
            let values = data
                .get(start..end)
                .map(|raw| decode::<F>(raw, expected))
                .ok_or_else(|| {
                    format_error(source, Some(&name), "data offsets outside the file".into())
                })?;
            let array = ArrayD::from_shape_vec(IxDyn(&info.shape), values)
                .map_err(|e| format_error(source, Some(&name), e.to_string()))?;
            Ok((name, array))
        })
        .collect::<Result<_>>()?;
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Checkpoint { tensors, metadata })
}

/// The safetensors dtype of `F`.
fn dtype_of<F: Scalar>() -> Result<Dtype> {
    if TypeId::of::<F>() == TypeId::of::<f32>() {
        Ok(Dtype::F32)
    } else if TypeId::of::<F>() == TypeId::of::<f64>() {
        Ok(Dtype::F64)
    } else {
        Err(Error::invalid(
            "dtype",
            format!(
                "checkpoints store f32 or f64, not {}",
                std::any::type_name::<F>()
            ),
        ))
    }
}

/// One tensor's little-endian bytes, row-major whatever the view's layout.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Encoded {
    fn new<F: Scalar>(dtype: Dtype, tensor: &ArrayViewD<'_, F>) -> Self {
        let mut bytes = Vec::with_capacity(tensor.len() * element_bytes(dtype));
        // `iter` walks in logical (row-major) order, which safetensors requires.
        for &x in tensor.iter() {
            match dtype {
                Dtype::F32 => bytes.extend_from_slice(&(x.to_f64_lossy() as f32).to_le_bytes()),
                _ => bytes.extend_from_slice(&x.to_f64_lossy().to_le_bytes()),
            }
        }
        Encoded {
            dtype,
            shape: tensor.shape().to_vec(),
            bytes,
        }
    }
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Bytes per element of F32 or F64 (whole bytes, unlike the sub-byte dtypes safetensors also knows).
fn element_bytes(dtype: Dtype) -> usize {
    dtype.bitsize() / 8
}

/// Converts validated little-endian bytes of `dtype` (F32 or F64) to `F`; both conversions are exact.
fn decode<F: Scalar>(bytes: &[u8], dtype: Dtype) -> Vec<F> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| {
                F::from_f64_lossy(f32::from_le_bytes(c.try_into().expect("4-byte chunk")) as f64)
            })
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| F::from_f64_lossy(f64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
            .collect(),
    }
}

/// Checks the header tensor by tensor, so that errors can name the culprit:
/// the header length, then each tensor's dtype, byte size and offsets. The
/// whole-file rules (tensors contiguous, data fully covered) are left to the
/// safetensors crate.
fn check_header(bytes: &[u8], expected: Dtype, source: &str) -> Result<()> {
    let file_error = |reason: String| format_error(source, None, reason);
    let Some(prefix) = bytes.get(..LENGTH_PREFIX) else {
        return Err(file_error(format!(
            "{} bytes is too short for a safetensors file",
            bytes.len()
        )));
    };
    let header_len = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    let available = bytes.len() - LENGTH_PREFIX;
    if header_len > available as u64 {
        return Err(file_error(format!(
            "header length {header_len} exceeds the {available} bytes after it (truncated file?)"
        )));
    }
    let header_end = LENGTH_PREFIX + header_len as usize;
    let data_len = bytes.len() - header_end;
    let entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[LENGTH_PREFIX..header_end])
            .map_err(|e| file_error(format!("header is not a JSON object: {e}")))?;
    for (name, entry) in entries {
        if name == METADATA_KEY {
            serde_json::from_value::<HashMap<String, String>>(entry).map_err(|e| {
                file_error(format!("{METADATA_KEY} must map strings to strings: {e}"))
            })?;
            continue;
        }
        let info: TensorInfo = serde_json::from_value(entry).map_err(|e| {
            format_error(source, Some(&name), format!("malformed header entry: {e}"))
        })?;
        check_tensor_info(&info, expected, data_len)
            .map_err(|reason| format_error(source, Some(&name), reason))?;
    }
    Ok(())
}

fn check_tensor_info(
    info: &TensorInfo,
    expected: Dtype,
    data_len: usize,
) -> std::result::Result<(), String> {
    if info.dtype != expected {
        return Err(format!(
            "dtype {:?}, expected {expected:?} (the model's scalar type)",
            info.dtype
        ));
    }
    let (start, end) = info.data_offsets;
    if start > end || end > data_len {
        return Err(format!(
            "data offsets [{start}, {end}] lie outside the {data_len} data bytes (truncated file?)"
        ));
    }
    let size = info
        .shape
        .iter()
        .try_fold(element_bytes(expected), |bytes, &d| bytes.checked_mul(d))
        .ok_or_else(|| format!("shape {:?} overflows", info.shape))?;
    if size != end - start {
        return Err(format!(
            "shape {:?} needs {size} bytes but its offsets span {}",
            info.shape,
            end - start
        ));
    }
    Ok(())
}

fn format_error(source: &str, tensor: Option<&str>, reason: String) -> Error {
    Error::Checkpoint {
        path: source.to_owned(),
        tensor: tensor.map(str::to_owned),
        reason,
    }
}

/// Errors the safetensors crate finds after [`check_header`] passed (gaps, overlaps, uncovered data).
fn library_error(source: &str, error: SafeTensorError) -> Error {
    let tensor = match &error {
        SafeTensorError::InvalidOffset(name) | SafeTensorError::TensorNotFound(name) => {
            Some(name.as_str())
        }
        _ => None,
    };
    format_error(source, tensor, error.to_string())
}

fn io_error(path: &Path, action: &str, error: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: format!("{action}: {error}"),
    }
}

/// Distinguishes temporary files of concurrent saves within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a fresh temporary sibling of `path`, flushes it, renames
/// it over `path` and flushes the directory. On failure the temporary file is
/// removed and `path` is untouched.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| Error::Io {
        path: path.display().to_string(),
        reason: "is not a file path".into(),
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(
        ".{}.{}-{unique}.tmp",
        file_name.to_string_lossy(),
        process_id()
    ));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io_error(&temp, "cannot create temporary file", e))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    // Closed before the rename: Windows cannot rename a file that is still open.
    drop(file);
    let replaced = written
        .map_err(|e| io_error(&temp, "cannot write temporary file", e))
        .and_then(|()| {
            fs::rename(&temp, path)
                .map_err(|e| io_error(path, "cannot replace with the new checkpoint", e))
        });
    if replaced.is_err() {
        // Best effort: the error being reported matters more than a leftover temporary file.
        let _ = fs::remove_file(&temp);
    }
    replaced?;
    sync_directory(dir).map_err(|e| io_error(dir, "cannot flush directory", e))
}

/// This process's id, which keeps the temporary names of processes writing to the same
/// directory apart. WASI has no process ids (std's `process::id` panics there), so under
/// WebAssembly it is a random number drawn once per process.
pub(crate) fn process_id() -> u32 {
    #[cfg(not(target_os = "wasi"))]
    {
        std::process::id()
    }
    #[cfg(target_os = "wasi")]
    {
        use std::hash::{BuildHasher, RandomState};
        static ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        // RandomState's keys come from WASI's `random_get`.
        *ID.get_or_init(|| RandomState::new().hash_one(0u8) as u32)
    }
}

/// Makes the rename itself durable. Windows cannot open directories as files
/// through std; NTFS journals the rename.
#[cfg(unix)]
pub(crate) fn sync_directory(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_directory(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
