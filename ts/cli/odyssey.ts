#!/usr/bin/env node
/**
 * `odyssey`: the command line of odyssey-rnn.
 *
 *     odyssey vqa synth   --out DIR [--seed S]
 *     odyssey vqa train   --questions F --annotations F --features F [--val-...] --fusion concat|product --epochs N --out DIR
 *     odyssey vqa eval    --model DIR --questions F --annotations F --features F [--json]
 *     odyssey vqa predict --model DIR --features F --image-id ID --question "..."
 *     odyssey report      --log LOG.jsonl --out REPORT.html
 *
 * Exit codes: 0 success; 1 a failure the user can fix (a missing or malformed
 * file, an image without features, a dimension mismatch), reported as one
 * line without a stack; 2 bad arguments (one line from the parser); 130 an
 * interrupted training; 70 an internal error (a bug: its stack is printed).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'

import { isOdysseyError, OdysseyAbortError } from '../errors'
import { REPORT_USAGE, ReportUsageError, reportCommand } from '../report'
import { LSTM_VARIANTS } from '../types'
import { VQA_FUSIONS } from '../vqa/graph'
import { SCENE_ENCODINGS } from '../vqa/synthetic'
import { evalCommand, predictCommand, synthCommand, trainCommand, type CommandIo } from './vqa-commands'

export const EXIT = { ok: 0, failure: 1, usage: 2, internal: 70, interrupted: 130 } as const

function integer(minimum: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value)
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(parsed) || parsed < minimum) {
      throw new InvalidArgumentError(`expected an integer >= ${minimum}`)
    }
    return parsed
  }
}

function positiveNumber(value: string): number {
  const parsed = Number(value)
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0)
    throw new InvalidArgumentError('expected a number > 0')
  return parsed
}

function rate(value: string): number {
  const parsed = Number(value)
  if (value.trim() === '' || !(parsed >= 0 && parsed < 1)) throw new InvalidArgumentError('expected a number in [0, 1)')
  return parsed
}

/** The three files of a split, as options with a common prefix (`--questions`, `--val-questions`). */
function splitOptions(command: Command, prefix: '' | 'val-', required: boolean): Command {
  const label = prefix === '' ? '' : 'validation '
  const add = (name: string, description: string) => {
    const flag = `--${prefix}${name} <file>`
    return required ? command.requiredOption(flag, description) : command.option(flag, description)
  }
  add('questions', `${label}questions JSON (VQA v2 layout)`)
  add('annotations', `${label}annotations JSON (VQA v2 layout)`)
  return add('features', `${label}image features (safetensors: image_ids [N], features [N, D])`)
}

function vqaCommands(io: CommandIo, signal: AbortSignal): Command {
  const vqa = new Command('vqa').description('visual question answering: train, evaluate and query a VQA model')
  const train = vqa.command('train').description('train a VQA model and save it (with its run log) into --out')
  splitOptions(train, '', true)
  splitOptions(train, 'val-', false)
    .addOption(new Option('--fusion <kind>', 'how image and question meet').choices(VQA_FUSIONS).default('product'))
    .requiredOption('--epochs <n>', 'training epochs', integer(1))
    .requiredOption('--out <dir>', 'checkpoint directory (written after every epoch)')
    .option('--glove <file>', 'pretrained word vectors (GloVe / word2vec text), kept frozen')
    .option('--glove-fine-tune', 'fine-tune the pretrained vectors instead of freezing them', false)
    .option('--top-k <k>', 'answer classes: the K most frequent answers', integer(1), 1000)
    .option('--batch-size <b>', 'questions per update', integer(1), 64)
    .option('--lr <rate>', 'Adam learning rate', positiveNumber, 1e-3)
    .option('--embedding-dim <n>', 'trainable word vector width (default 300)', integer(1))
    .option('--lstm-hidden <n>', 'LSTM units per layer (default 512)', integer(1))
    .option('--lstm-layers <n>', 'stacked LSTM layers, 1-3 (default: 2 product, 1 concat)', integer(1))
    .addOption(new Option('--variant <name>', 'LSTM variant (Greff et al.)').choices(LSTM_VARIANTS))
    .addOption(
      new Option('--question-vector <kind>', "'last' y, or every layer's last c and y").choices(['last', 'states']),
    )
    .option('--hidden <n>', 'width of the fusion dense layers (default 1024)', integer(1))
    .option('--dense-layers <n>', 'dense tanh layers after the fusion (default: 2 product, 3 concat)', integer(0))
    .option('--dropout <rate>', 'dropout rate (default 0.5)', rate)
    .option('--max-length <n>', 'question tokens kept (default 26)', integer(1))
    .option('--seed <s>', 'seed of weights, dropout and order', integer(0), 0)
    .action((options) => trainCommand(options, io, signal))
  const evaluate = vqa
    .command('eval')
    .description('official VQA accuracy of a saved model, overall and per question / answer type')
    .requiredOption('--model <dir>', 'a directory written by vqa train')
  splitOptions(evaluate, '', true)
    .option('--json', 'print the evaluation as JSON', false)
    .option('--batch-size <b>', 'questions per forward pass', integer(1), 256)
    .action((options) => evalCommand(options, io))
  vqa
    .command('predict')
    .description('answer one question about one image')
    .requiredOption('--model <dir>', 'a directory written by vqa train')
    .requiredOption('--features <file>', 'image features (safetensors)')
    .requiredOption('--image-id <id>', 'the image, by its id in the features file', integer(0))
    .requiredOption('--question <text>', 'the question')
    .option('--top <n>', 'answers to show', integer(1), 5)
    .option('--json', 'print the answers as JSON', false)
    .action((options) => predictCommand(options, io))
  vqa
    .command('synth')
    .description('write the synthetic VQA set (train and val splits, VQA v2 layout)')
    .requiredOption('--out <dir>', 'directory for the six files')
    .option('--seed <s>', 'seed of the training split (val uses seed + 1)', integer(0), 1)
    .option('--images <n>', 'training images (about 5 questions each)', integer(1), 2000)
    .option('--val-images <n>', 'validation images', integer(1), 500)
    .option('--feature-dim <d>', 'feature width D', integer(1), 512)
    .addOption(
      new Option('--encoding <kind>', 'what the features encode per grid cell')
        .choices(SCENE_ENCODINGS)
        .default('objects'),
    )
    .action((options) => synthCommand(options, io))
  return vqa
}

/** `odyssey report` hands its arguments to `reportCommand`, which parses them itself. */
function reportCommandOf(io: CommandIo): Command {
  return new Command('report')
    .description('draw training runs (run logs) into one self-contained HTML page')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action((args: string[]) => reportCommand(args, io))
}

export function buildProgram(io: CommandIo, signal: AbortSignal): Command {
  const program = new Command('odyssey')
    .description('odyssey-rnn: LSTMs and simple RNNs for Node.js')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride()
  program.addCommand(vqaCommands(io, signal))
  program.addCommand(reportCommandOf(io))
  // Subcommands inherit neither exitOverride nor the output; set both everywhere.
  const configure = (command: Command) => {
    command.exitOverride().configureOutput(program.configureOutput())
    command.commands.forEach(configure)
  }
  program.commands.forEach(configure)
  return program
}

/** One line: messages of the library's errors are meant for users, but may span lines. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim()
}

/** The exit code of a failure, after writing its one-line report (or the stack of a bug). */
function report(error: unknown, io: CommandIo): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage
  if (error instanceof ReportUsageError) {
    io.stderr.write(`${error.message}\n\n${REPORT_USAGE}\n`)
    return EXIT.usage
  }
  if (error instanceof OdysseyAbortError) {
    io.stderr.write(`odyssey: ${oneLine(error.message)}\n`)
    return EXIT.interrupted
  }
  if (isOdysseyError(error)) {
    io.stderr.write(`odyssey: ${oneLine(error.message)}\n`)
    return EXIT.failure
  }
  io.stderr.write(
    `odyssey: internal error (please report it): ${error instanceof Error ? error.stack : String(error)}\n`,
  )
  return EXIT.internal
}

/**
 * Runs the program on `argv` (node's, starting with the executable and script) and resolves to
 * the exit code; Ctrl-C during training stops it after the current batch.
 */
export async function main(argv: readonly string[] = process.argv, io: CommandIo = process): Promise<number> {
  const controller = new AbortController()
  const interrupt = () => controller.abort(new Error('interrupted (SIGINT)'))
  process.once('SIGINT', interrupt)
  try {
    await buildProgram(io, controller.signal).parseAsync([...argv])
    return EXIT.ok
  } catch (error) {
    return report(error, io)
  } finally {
    process.removeListener('SIGINT', interrupt)
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code
  })
}
