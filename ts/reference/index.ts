/**
 * The pure-TypeScript reference backend (`backend: 'js'`): SPEC §1 and §2 (and the GRU) with
 * plain loops, the oracle of the test suite and the benchmarks' JS baseline.
 */
export { ReferenceGru, type ReferenceGruConfig } from './gru'
export { ReferenceLstm, type ReferenceLstmConfig } from './lstm'
export { ReferenceSimpleRnn, type ReferenceSimpleRnnConfig } from './simple-rnn'
