//! Running a recurrence on several threads: every time step is split into
//! chunks (e.g. ranges of hidden units) that can run in parallel, and step
//! t + 1 may only start once every chunk of step t is done.
//!
//! Each participating thread prefers "its" chunks, so a chunk's weights stay
//! in that core's cache from step to step, and steals the others' when they
//! lag. Nothing ever waits for a thread that has not started: a chunk is
//! claimed atomically before it runs, so a late or absent participant only
//! costs parallelism, never progress (rayon gives no guarantee that spawned
//! work runs concurrently, and the machine may be busy).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::microkernels::MAX_MR;
use super::pack::MatRef;

/// Spins before yielding the core to another thread while waiting for a step.
const SPINS_BEFORE_YIELD: u32 = 200;

/// Below this many flops per step, a barrier would cost more than a second thread saves.
pub(crate) const PARALLEL_STEP_FLOPS: usize = 250_000;

/// Chunk boundaries of a recurrence fall on multiples of this many columns (units):
/// whole B panels of every micro-kernel and whole SIMD vectors, so that splitting a
/// step changes no element's arithmetic.
pub(crate) const CHUNK_ALIGN: usize = 32;
const _: () = assert!(CHUNK_ALIGN.is_multiple_of(super::microkernels::MAX_NR));

/// The column ranges a step of `step_flops` is split into: one per rayon thread when
/// the step is worth a barrier, else one.
pub(crate) fn step_chunks(columns: usize, step_flops: usize) -> Vec<Range<usize>> {
    let parts = if step_flops >= PARALLEL_STEP_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    };
    aligned_split(columns, parts, CHUNK_ALIGN)
}

/// The batch rows a recurrence over independent sequences is split into instead, one
/// part per thread, each run through every step on its own thread: sequences never meet,
/// so no step waits for another thread (`None`: split the units, [`step_chunks`]). Only
/// when a step is worth a second thread and every part keeps a whole micro-kernel tile
/// ([`MAX_MR`] rows; a thinner part would pad every tile it multiplies). A row's
/// arithmetic does not depend on the rows beside it, so the split changes no value.
pub(crate) fn sequence_parts(batch: usize, step_flops: usize) -> Option<Vec<Range<usize>>> {
    let threads = if step_flops >= PARALLEL_STEP_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    };
    let parts = threads.min(batch / MAX_MR);
    (parts >= 2).then(|| aligned_split(batch, parts, MAX_MR))
}

/// Runs `work(step, chunk)` for `step` in `0..steps` in order and every
/// `chunk` in `0..chunks`, on up to `chunks` threads of rayon's pool (the
/// caller's among them). All chunks of a step happen-before any chunk of the
/// next step.
pub(crate) fn run_lockstep(steps: usize, chunks: usize, work: &(dyn Fn(usize, usize) + Sync)) {
    let participants = chunks.min(rayon::current_num_threads());
    if participants <= 1 {
        for step in 0..steps {
            for chunk in 0..chunks {
                work(step, chunk);
            }
        }
        return;
    }
    let schedule = Schedule {
        claimed: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
        completed: AtomicUsize::new(0),
        poisoned: AtomicBool::new(false),
        steps,
        participants,
    };
    rayon::in_place_scope(|scope| {
        for participant in 1..participants {
            let schedule = &schedule;
            scope.spawn(move |_| schedule.participate(participant, work));
        }
        schedule.participate(0, work);
    });
}

struct Schedule {
    /// Per chunk: how many of its steps have been claimed (= the next step to claim).
    claimed: Vec<AtomicUsize>,
    /// Chunk-steps finished; step t is complete once this reaches (t + 1)·chunks.
    completed: AtomicUsize,
    /// A chunk panicked: waiting would never end, so everyone stops.
    poisoned: AtomicBool,
    steps: usize,
    participants: usize,
}

/// Marks the schedule poisoned if a chunk unwinds.
struct PoisonOnUnwind<'a>(&'a AtomicBool);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

impl Schedule {
    fn participate(&self, participant: usize, work: &(dyn Fn(usize, usize) + Sync)) {
        let chunks = self.claimed.len();
        for step in 0..self.steps {
            if !self.wait_for(step * chunks) {
                return;
            }
            for chunk in self.preference_order(participant) {
                let claim = self.claimed[chunk].compare_exchange(
                    step,
                    step + 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                if claim.is_ok() {
                    let guard = PoisonOnUnwind(&self.poisoned);
                    work(step, chunk);
                    drop(guard);
                    self.completed.fetch_add(1, Ordering::Release);
                }
            }
        }
    }

    /// Own chunks (`participant`, `participant + participants`, …) first, then everyone else's.
    fn preference_order(&self, participant: usize) -> impl Iterator<Item = usize> + '_ {
        let chunks = self.claimed.len();
        let own = (participant..chunks).step_by(self.participants);
        let others = (0..chunks).filter(move |c| c % self.participants != participant);
        own.chain(others)
    }

    /// Waits until `target` chunk-steps are complete; `false` if the schedule was poisoned.
    fn wait_for(&self, target: usize) -> bool {
        let mut spins = 0;
        while self.completed.load(Ordering::Acquire) < target {
            if self.poisoned.load(Ordering::Acquire) {
                return false;
            }
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
    }
}

/// Runs `work(0)` on the calling thread and `work(1)` on a persistent helper
/// thread, and returns when both are done: the split of one tiny step (a
/// streaming step's matrix–vector products, a few microseconds), for which
/// handing work to rayon's pool would cost as much as the work.
///
/// The helper always takes part 1, so the weights that part reads stay in its
/// core's cache from call to call. Between calls it spins for
/// [`HELPER_SPIN`] (a loop of steps keeps it awake), then parks (an idle model
/// costs no CPU). If it has not started part 1 by the time the caller has
/// finished part 0 (parked, or its core busy), the caller runs part 1 itself:
/// a late helper costs parallelism, never progress. When the helper loses (it
/// was awake but did not start part 1 before the caller finished part 0, or it
/// finished so late that the job took longer than two parts on the caller: its
/// core is busy with other work, as on a loaded server), the caller runs the
/// next jobs alone, 1, 2, 4, … up to [`MAX_ALONE`] of them after successive
/// losses, then tries the pair again (see [`Verdict`]). One caller at a time uses
/// the helper; a concurrent caller runs both parts itself. Without threads
/// (one rayon thread, WebAssembly) both parts run on the caller.
pub(crate) fn run_pair(work: &(dyn Fn(usize) + Sync)) {
    match Pair::acquire() {
        Some(pair) => pair.run(work),
        None => {
            work(0);
            work(1);
        }
    }
}

/// How long the pair's helper keeps spinning for the next part before it parks.
const HELPER_SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// The most jobs the caller runs alone after successive losses of the pair before it tries again.
const MAX_ALONE: u32 = 1024;

/// How one job went on the pair, judged by its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The helper ran part 1 and the job ended before two parts on the caller would have.
    Won,
    /// The helper was awake yet never started part 1 while the caller ran part 0 (its core
    /// is taken), or the job took longer than part 0 twice: the caller alone would have been faster.
    Lost,
    /// The helper was parked when the job came: the caller ran part 1 (nothing learnt).
    Woken,
}

impl Verdict {
    /// `own`: the caller's part 0; `total`: the whole job, waiting for the helper included.
    fn of(
        stolen: bool,
        helper_parked: bool,
        own: std::time::Duration,
        total: std::time::Duration,
    ) -> Self {
        match (stolen, helper_parked) {
            (true, true) => Verdict::Woken,
            (true, false) => Verdict::Lost,
            (false, _) if total > own * 2 => Verdict::Lost,
            (false, _) => Verdict::Won,
        }
    }
}

/// The caller's back-off: how many jobs to run alone next, and after the next loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    alone: u32,
    next: u32,
}

impl Backoff {
    const FRESH: Backoff = Backoff { alone: 0, next: 1 };

    fn after(self, verdict: Verdict) -> Backoff {
        match verdict {
            Verdict::Won => Backoff::FRESH,
            Verdict::Lost => Backoff {
                alone: self.next,
                next: (self.next * 2).min(MAX_ALONE),
            },
            Verdict::Woken => self,
        }
    }
}

/// The erased type of a job: it borrows the caller's stack, which outlives its run (see [`Pair::run`]).
type Job = *const (dyn Fn(usize) + Sync + 'static);

/// The state shared by [`run_pair`]'s callers and its helper thread. Jobs are
/// numbered 1, 2, …; `claimed` and `done` hold the number of the last job whose
/// part 1 someone claimed / the helper finished.
struct Pair {
    published: std::sync::atomic::AtomicU64,
    claimed: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
    /// The job numbered `published`; written only by the caller holding `busy`, before it publishes.
    job: std::cell::UnsafeCell<Option<Job>>,
    /// A caller is using the pair.
    busy: AtomicBool,
    /// The helper is parked or about to park: a new job must unpark it.
    sleeping: AtomicBool,
    /// Part 1 of the last job panicked on the helper.
    panicked: AtomicBool,
    /// The callers' back-off; read and written only by the caller holding `busy`.
    backoff: std::cell::Cell<Backoff>,
    helper: std::sync::OnceLock<std::thread::Thread>,
}

// SAFETY: `job` is written only by the caller holding `busy` before it publishes the job's
// number, and read by the helper only after claiming that number (see `run` and `serve`);
// `backoff` is touched only by the caller holding `busy`.
unsafe impl Sync for Pair {}

impl Pair {
    /// The process's pair, started on first use, unless another caller holds it or there are no threads.
    fn acquire() -> Option<&'static Pair> {
        static PAIR: std::sync::OnceLock<Option<&'static Pair>> = std::sync::OnceLock::new();
        let pair = (*PAIR.get_or_init(Pair::start))?;
        if rayon::current_num_threads() < 2 || pair.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        Some(pair)
    }

    fn start() -> Option<&'static Pair> {
        if cfg!(target_family = "wasm") || rayon::current_num_threads() < 2 {
            return None;
        }
        let pair: &'static Pair = Box::leak(Box::new(Pair {
            published: 0.into(),
            claimed: 0.into(),
            done: 0.into(),
            job: std::cell::UnsafeCell::new(None),
            busy: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            backoff: std::cell::Cell::new(Backoff::FRESH),
            helper: std::sync::OnceLock::new(),
        }));
        let handle = std::thread::Builder::new()
            .name("odyssey-step".to_owned())
            .spawn(move || pair.serve())
            .ok()?;
        pair.helper.get_or_init(|| handle.thread().clone());
        Some(pair)
    }

    /// Runs `work` split in two, or alone while backing off; the caller holds `busy`.
    fn run(&self, work: &(dyn Fn(usize) + Sync)) {
        let backoff = self.backoff.get();
        let number = self.published.load(Ordering::Relaxed) + 1;
        if backoff.alone > 0 {
            self.backoff.set(Backoff {
                alone: backoff.alone - 1,
                ..backoff
            });
            // Nothing is published, so there is nothing to wait for: only the pair to free.
            let _release = Release(self);
            work(0);
            work(1);
            return;
        }
        // SAFETY: only the lifetime is erased. The helper calls the job only after claiming
        // `number`, and `Join` does not let this function return (or unwind) before that
        // part is finished or can no longer be claimed.
        let job: Job = unsafe { std::mem::transmute(work as *const (dyn Fn(usize) + Sync + '_)) };
        // SAFETY: `busy` is ours and job `number` is not published yet: nobody reads `job`.
        unsafe { *self.job.get() = Some(job) };
        // A panic left over from a job whose caller unwound before it could report it.
        self.panicked.store(false, Ordering::Relaxed);
        self.published.store(number, Ordering::SeqCst);
        let parked = self.sleeping.load(Ordering::SeqCst);
        if parked {
            if let Some(helper) = self.helper.get() {
                helper.unpark();
            }
        }
        let mut join = Join {
            pair: self,
            number,
            stolen: false,
            _release: Release(self),
        };
        let start = std::time::Instant::now();
        work(0);
        let own = start.elapsed();
        if self.claim(number) {
            join.stolen = true;
            work(1);
        }
        join.wait();
        let verdict = Verdict::of(join.stolen, parked, own, start.elapsed());
        self.backoff.set(backoff.after(verdict));
        drop(join);
        assert!(
            !self.panicked.swap(false, Ordering::AcqRel),
            "the streaming step's helper thread panicked"
        );
    }

    /// Takes part 1 of job `number` (for whoever runs it); `false` if someone already has.
    fn claim(&self, number: u64) -> bool {
        self.claimed
            .compare_exchange(number - 1, number, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The helper thread: runs part 1 of every job it claims in time.
    fn serve(&self) {
        let mut seen = 0;
        loop {
            let number = self.next_job(seen);
            seen = number;
            if !self.claim(number) {
                continue;
            }
            // SAFETY: claimed job `number`, so its caller waits for `done` before the job's borrow ends.
            let job = unsafe { (*self.job.get()).expect("a published job") };
            // SAFETY: as above, the job is alive until `done` says so.
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)(1) }));
            if run.is_err() {
                self.panicked.store(true, Ordering::Release);
            }
            self.done.store(number, Ordering::Release);
        }
    }

    /// Waits for a job numbered above `seen`: spins for [`HELPER_SPIN`], then parks.
    fn next_job(&self, seen: u64) -> u64 {
        loop {
            let start = std::time::Instant::now();
            let mut spins = 0u32;
            loop {
                let number = self.published.load(Ordering::Acquire);
                if number > seen {
                    return number;
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) && start.elapsed() >= HELPER_SPIN {
                    break;
                }
                std::hint::spin_loop();
            }
            self.sleeping.store(true, Ordering::SeqCst);
            // Published after `sleeping` was set: its caller unparks us; before: we see it here.
            if self.published.load(Ordering::SeqCst) == seen {
                std::thread::park();
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
    }
}

/// Frees the pair for the next caller when dropped, however the caller leaves (returns or unwinds).
struct Release<'a>(&'a Pair);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// Ends a job: waits for the helper's part 1 if it claimed it, then frees the pair.
struct Join<'a> {
    pair: &'a Pair,
    number: u64,
    /// The caller ran part 1 itself.
    stolen: bool,
    /// Dropped after [`Join`]'s own `drop` has waited.
    _release: Release<'a>,
}

impl Join<'_> {
    /// Returns once part 1 is done or can no longer start.
    fn wait(&self) {
        // Unclaimed (the caller's part 0 unwound): claiming it now means nobody runs it.
        if !self.stolen && !self.pair.claim(self.number) {
            let mut spins = 0;
            while self.pair.done.load(Ordering::Acquire) < self.number {
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl Drop for Join<'_> {
    fn drop(&mut self) {
        self.wait();
    }
}

/// Splits `0..len` into `parts` contiguous ranges whose inner boundaries are
/// multiples of `align`; trailing ranges may be empty when `len` is small.
pub(crate) fn aligned_split(len: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    let bounds: Vec<usize> = (0..=parts)
        .map(|p| ((len * p / parts).div_ceil(align) * align).min(len))
        .collect();
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// A matrix (`[rows, width]`, row-major) written by several threads at once,
/// each to its own part, as the chunks of a lock-step recurrence do.
#[derive(Clone, Copy)]
pub(crate) struct SharedRows<'a, F> {
    ptr: *mut F,
    rows: usize,
    width: usize,
    _borrow: std::marker::PhantomData<&'a mut [F]>,
}

// SAFETY: SharedRows hands out element ranges only through unsafe accessors whose
// callers guarantee that no range is written by one thread while another touches it.
unsafe impl<F: Send> Send for SharedRows<'_, F> {}
// SAFETY: as above.
unsafe impl<F: Send> Sync for SharedRows<'_, F> {}

impl<'a, F> SharedRows<'a, F> {
    /// Shares `data` (`[rows, width]` row-major) for the lifetime of the borrow.
    pub fn new(data: &'a mut [F], width: usize) -> Self {
        assert!(
            width > 0 && data.len().is_multiple_of(width),
            "data holds whole rows"
        );
        SharedRows {
            ptr: data.as_mut_ptr(),
            rows: data.len() / width,
            width,
            _borrow: std::marker::PhantomData,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Pointer to element (`row`, `col`), for kernels that take raw operands.
    pub fn ptr_at(&self, row: usize, col: usize) -> *mut F {
        assert!(row < self.rows && col <= self.width, "inside the matrix");
        self.ptr.wrapping_add(row * self.width + col)
    }

    /// Rows `rows`, every column, as a GEMM operand.
    ///
    /// # Safety
    /// No thread may write these rows while the operand lives.
    pub unsafe fn rows_ref(&self, rows: Range<usize>) -> MatRef<'a, F>
    where
        F: crate::Scalar,
    {
        assert!(rows.start <= rows.end, "a forward range");
        // SAFETY: per the caller.
        unsafe { self.strided_rows_ref(rows.start, rows.len(), 1) }
    }

    /// `count` rows `first, first + stride, …`, every column, as a GEMM operand
    /// (e.g. one step of every sequence of a batch-major buffer).
    ///
    /// # Safety
    /// No thread may write these rows while the operand lives.
    pub unsafe fn strided_rows_ref(
        &self,
        first: usize,
        count: usize,
        stride: usize,
    ) -> MatRef<'a, F>
    where
        F: crate::Scalar,
    {
        assert!(
            stride >= 1 && (count == 0 || first + (count - 1) * stride < self.rows),
            "inside the matrix"
        );
        let start = self.ptr.wrapping_add(first * self.width);
        let rs = (stride * self.width) as isize;
        // SAFETY: the rows lie inside the borrowed buffer (asserted); no writers per the caller.
        unsafe { MatRef::from_raw_parts(start, count, self.width, rs, 1) }
    }

    /// Columns `cols` of row `row`.
    ///
    /// # Safety
    /// No other thread may write these elements while the slice lives.
    pub unsafe fn row(&self, row: usize, cols: Range<usize>) -> &'a [F] {
        assert!(
            row < self.rows && cols.start <= cols.end && cols.end <= self.width,
            "inside the matrix"
        );
        // SAFETY: inside the borrowed buffer (asserted); exclusivity per the caller.
        unsafe {
            std::slice::from_raw_parts(self.ptr.add(row * self.width + cols.start), cols.len())
        }
    }

    /// Columns `cols` of row `row`, to write.
    ///
    /// # Safety
    /// No other thread may read or write these elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn row_mut(&self, row: usize, cols: Range<usize>) -> &'a mut [F] {
        assert!(
            row < self.rows && cols.start <= cols.end && cols.end <= self.width,
            "inside the matrix"
        );
        // SAFETY: inside the borrowed buffer (asserted); exclusivity per the caller.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(row * self.width + cols.start), cols.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_of_a_step_sees_the_whole_previous_step() {
        let (steps, chunks) = (200, 4);
        let mut values = vec![0u64; (steps + 1) * chunks];
        let shared = SharedRows::new(&mut values, chunks);
        run_lockstep(steps, chunks, &|step, chunk| {
            // SAFETY: chunk c writes only (step + 1, c) and reads row `step`, complete before this step.
            unsafe {
                let previous = shared
                    .row(step, 0..chunks)
                    .iter()
                    .fold(0u64, |a, &v| a.wrapping_add(v));
                shared.row_mut(step + 1, chunk..chunk + 1)[0] = previous.wrapping_add(1);
            }
        });
        let mut expected = 0u64;
        for step in 0..steps {
            expected = expected.wrapping_mul(chunks as u64).wrapping_add(1);
            assert!(values[(step + 1) * chunks..(step + 2) * chunks]
                .iter()
                .all(|&v| v == expected));
        }
    }

    #[test]
    #[cfg_attr(
        target_family = "wasm",
        ignore = "the pair is off on WebAssembly, and threads spawned from a test's thread can \
                  deadlock the WASI test runner (it hung once in .ci/run)"
    )]
    fn a_pair_runs_both_parts_of_every_job_before_returning() {
        let runs: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
        let callers = 3;
        std::thread::scope(|scope| {
            for _ in 0..callers {
                scope.spawn(|| {
                    for job in 0..2000 {
                        let seen = AtomicUsize::new(0);
                        run_pair(&|part| {
                            runs[part].fetch_add(1, Ordering::Relaxed);
                            seen.fetch_or(1 << part, Ordering::Relaxed);
                        });
                        assert_eq!(seen.load(Ordering::Relaxed), 0b11, "job {job}");
                        if job % 500 == 0 {
                            // Long enough for the helper to park: the next job must wake it (or be stolen).
                            std::thread::sleep(HELPER_SPIN * 3);
                        }
                    }
                });
            }
        });
        for part in &runs {
            assert_eq!(part.load(Ordering::Relaxed), callers * 2000);
        }
    }

    #[test]
    #[cfg_attr(
        target_family = "wasm",
        ignore = "a panic aborts a WebAssembly module: there is no unwinding to catch"
    )]
    fn a_panicking_part_reaches_the_caller_and_the_pair_goes_on() {
        for panicking in [0, 1] {
            let outcome = std::panic::catch_unwind(|| {
                run_pair(&|part| assert_ne!(part, panicking, "part {part} fails"));
            });
            assert!(outcome.is_err(), "part {panicking}'s panic was lost");
        }
        let count = AtomicUsize::new(0);
        run_pair(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_caller_backs_off_a_losing_helper_and_returns_after_a_win() {
        let us = std::time::Duration::from_micros;
        assert_eq!(Verdict::of(false, false, us(10), us(12)), Verdict::Won);
        assert_eq!(Verdict::of(false, true, us(10), us(19)), Verdict::Won);
        // Preempted in the middle of part 1: slower than both parts on the caller.
        assert_eq!(Verdict::of(false, false, us(10), us(25)), Verdict::Lost);
        // Awake but never started: its core is taken.
        assert_eq!(Verdict::of(true, false, us(10), us(20)), Verdict::Lost);
        // Parked: waking it is the price of a pause between steps, not a sign of a busy core.
        assert_eq!(Verdict::of(true, true, us(10), us(20)), Verdict::Woken);

        let mut backoff = Backoff::FRESH;
        let mut alone = Vec::new();
        for _ in 0..12 {
            backoff = backoff.after(Verdict::Lost);
            alone.push(backoff.alone);
        }
        assert_eq!(alone, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1024]);
        assert_eq!(backoff.after(Verdict::Woken), backoff);
        assert_eq!(backoff.after(Verdict::Won), Backoff::FRESH);
    }

    #[test]
    fn splits_are_aligned_and_cover_everything() {
        assert_eq!(aligned_split(100, 2, 16), vec![0..64, 64..100]);
        assert_eq!(aligned_split(10, 3, 16), vec![0..10, 10..10, 10..10]);
        assert_eq!(aligned_split(256, 2, 16), vec![0..128, 128..256]);
    }
}
