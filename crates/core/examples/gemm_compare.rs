//! The one-shot products of the layers (input projection, δx, δW, δR, a dense
//! layer) through three GEMMs: odyssey's own (`kernels::gemm`), the `gemm`
//! crate (faer's) and `matrixmultiply` (ndarray's), on one thread and on two.
//!
//! ```text
//! cargo build --release -p odyssey-core --features compare-gemm --example gemm_compare
//! MATMUL_NUM_THREADS=2 target/release/examples/gemm_compare --threads 2 [--reps N] [FILTER...]
//! MATMUL_NUM_THREADS=1 target/release/examples/gemm_compare --threads 1
//! ```
//!
//! `--threads N`: odyssey runs in an N-thread rayon pool, `gemm` with
//! `Parallelism::Rayon(N)` (or `None` for one); matrixmultiply sizes its own
//! pool from `MATMUL_NUM_THREADS` once per process, hence one process per
//! thread count. Each product's three results are checked to agree first.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `[batch, time, input, hidden]` of the bench's shapes.
const SHAPES: [(&str, [usize; 4]); 3] = [
    ("S1", [32, 50, 64, 128]),
    ("S2", [64, 100, 128, 256]),
    ("S3", [64, 100, 512, 512]),
];

/// A product `A·B` as the layer forms it: A `[m, k]`, B `[k, n]`, each
/// possibly a transposed view of the stored matrix.
struct Product {
    name: String,
    a: Array2<f32>,
    a_transposed: bool,
    b: Array2<f32>,
    b_transposed: bool,
}

impl Product {
    fn new(name: String, (m, k, n): (usize, usize, usize), a_t: bool, b_t: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut random = |(r, c): (usize, usize)| {
            Array2::from_shape_simple_fn((r, c), || rng.gen_range(-1.0f32..1.0))
        };
        Product {
            name,
            a: if a_t { random((k, m)) } else { random((m, k)) },
            a_transposed: a_t,
            b: if b_t { random((n, k)) } else { random((k, n)) },
            b_transposed: b_t,
        }
    }

    fn a(&self) -> ArrayView2<'_, f32> {
        if self.a_transposed {
            self.a.t()
        } else {
            self.a.view()
        }
    }

    fn b(&self) -> ArrayView2<'_, f32> {
        if self.b_transposed {
            self.b.t()
        } else {
            self.b.view()
        }
    }

    fn flops(&self) -> f64 {
        let (a, b) = (self.a(), self.b());
        2.0 * (a.nrows() * a.ncols() * b.ncols()) as f64
    }
}

fn products() -> Vec<Product> {
    let mut out = Vec::new();
    for (shape, [batch, time, x, h]) in SHAPES {
        let rows = batch * time;
        // Input projection x·Wᵀ (W `[4H, X]`), δx = δ·W, δW = xᵀ·δ, δR = hᵀ·δ.
        out.push(Product::new(
            format!("{shape} projection"),
            (rows, x, 4 * h),
            false,
            true,
        ));
        out.push(Product::new(
            format!("{shape} dx"),
            (rows, 4 * h, x),
            false,
            false,
        ));
        out.push(Product::new(
            format!("{shape} dW"),
            (x, rows, 4 * h),
            true,
            false,
        ));
        out.push(Product::new(
            format!("{shape} dR"),
            (h, rows, 4 * h),
            true,
            false,
        ));
        // A dense head on every step's output (H → H).
        out.push(Product::new(
            format!("{shape} dense"),
            (rows, h, h),
            false,
            true,
        ));
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Library {
    Odyssey,
    Gemm,
    Matrixmultiply,
}

fn multiply(library: Library, product: &Product, c: &mut Array2<f32>, threads: usize) {
    let (a, b) = (product.a(), product.b());
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let [rsa, csa] = [a.strides()[0], a.strides()[1]];
    let [rsb, csb] = [b.strides()[0], b.strides()[1]];
    let rsc = c.strides()[0];
    match library {
        Library::Odyssey => odyssey_core::kernels::gemm(a, b, c.view_mut(), false, None),
        // SAFETY: the strides and shapes describe the live arrays a, b and c.
        Library::Gemm => unsafe {
            let parallelism = if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                rsc,
                false,
                a.as_ptr(),
                csa,
                rsa,
                b.as_ptr(),
                csb,
                rsb,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        },
        // SAFETY: as above.
        Library::Matrixmultiply => unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                0.0,
                c.as_mut_ptr(),
                rsc,
                1,
            )
        },
    }
}

const LIBRARIES: [Library; 3] = [Library::Odyssey, Library::Gemm, Library::Matrixmultiply];

/// The fastest of `reps` timed runs of each library, the libraries alternated run by
/// run so that a burst of load from the rest of the machine hits all three alike.
fn fastest_times(mut run: impl FnMut(Library), reps: usize) -> [Duration; 3] {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(300) {
        LIBRARIES.iter().for_each(|&library| run(library));
    }
    let mut fastest = [Duration::MAX; 3];
    for _ in 0..reps {
        for (best, &library) in fastest.iter_mut().zip(&LIBRARIES) {
            let start = Instant::now();
            run(library);
            *best = (*best).min(start.elapsed());
        }
    }
    fastest
}

fn main() {
    let mut reps = 11;
    let mut threads = 1;
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--threads N")
            }
            "--bench" => {}
            _ => filters.push(arg),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    println!(
        "threads {threads}, kernels {:?}, GFLOP/s of the fastest of {reps} alternated runs",
        odyssey_core::kernels::Isa::current()
    );
    println!(
        "{:<16} {:>20} {:>9} {:>9} {:>9}",
        "product", "m×k×n", "odyssey", "gemm", "mmul"
    );
    for product in products() {
        if !filters.is_empty() && !filters.iter().any(|f| product.name.contains(f.as_str())) {
            continue;
        }
        let (a, b) = (product.a(), product.b());
        let mut c = Array2::<f32>::zeros((a.nrows(), b.ncols()));
        // The three agree (same products up to rounding), or the timing means nothing.
        let mut expected: Option<Array2<f32>> = None;
        for library in LIBRARIES {
            pool.install(|| multiply(library, &product, &mut c, threads));
            let reference = expected.get_or_insert_with(|| c.clone());
            let worst = c
                .iter()
                .zip(reference.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 1e-3 * a.ncols() as f32,
                "{library:?} differs by {worst}"
            );
        }
        let times = pool.install(|| {
            fastest_times(
                |library| multiply(library, &product, black_box(&mut c), threads),
                reps,
            )
        });
        let cells = times.map(|time| product.flops() / time.as_secs_f64() / 1e9);
        println!(
            "{:<16} {:>20} {:>9.1} {:>9.1} {:>9.1}",
            product.name,
            format!("{}×{}×{}", a.nrows(), a.ncols(), b.ncols()),
            cells[0],
            cells[1],
            cells[2]
        );
    }
}
