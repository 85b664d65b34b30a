/** Seeded synthetic tasks for recurrent networks: long-range memory benchmarks. */
export { ADDING_BASELINE_MSE, addingProblem, type AddingProblem, type AddingProblemOptions } from './adding'
export { copyMemory, type CopyMemory, type CopyMemoryOptions } from './copy-memory'
