/**
 * One split opened in one call: questions, their annotations when the split
 * has them (train, val; not test), and the image features, with every
 * question's image checked against the features file up front, so a missing
 * image fails at load time rather than in the middle of an epoch.
 */
import { ImageFeatures, type OpenImageFeaturesOptions } from './features'
import { readVqaExamples, readVqaQuestions, type VqaAnnotation, type VqaQuestion } from './files'

export interface VqaSplitFiles {
  questionsFile: string
  /** Absent for a test split. */
  annotationsFile?: string
  featuresFile: string
}

export interface VqaSplit {
  questions: VqaQuestion[]
  /** `annotations[i]` is the annotation of `questions[i]`; absent without an annotations file. */
  annotations?: VqaAnnotation[]
  /** Open features; call `features.close()` when done. */
  features: ImageFeatures
}

/**
 * Reads and joins the files of a split and opens its features. Throws the
 * loaders' `VqaFileError`s, `VqaShapeError` if `expectedDim` differs from
 * the file's D, and `VqaLookupError` for a question whose image has no features.
 */
export async function openVqaSplit(files: VqaSplitFiles, options: OpenImageFeaturesOptions = {}): Promise<VqaSplit> {
  const { questionsFile, annotationsFile } = files
  const examples = annotationsFile === undefined ? undefined : await readVqaExamples({ questionsFile, annotationsFile })
  const questions = examples ?? (await readVqaQuestions(questionsFile))
  const features = await ImageFeatures.open(files.featuresFile, options)
  try {
    features.requireImages(questions, questionsFile)
  } catch (error) {
    await features.close()
    throw error
  }
  return examples === undefined ? { questions, features } : { questions, annotations: examples, features }
}
