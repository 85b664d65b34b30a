/**
 * Answer normalisation exactly as the official VQA evaluation does it
 * (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py, the
 * 2021 version that normalises both the human answers and the prediction):
 * `processPunctuation`, then `processDigitArticle`. The official code's
 * quirks are kept on purpose, because accuracies are only comparable with
 * published ones if every answer is folded the same way:
 * - a punctuation mark is deleted when it touches a space anywhere in the
 *   text, or when the text has a comma between two digits ("1,000" → "1000");
 *   otherwise it becomes a space ("t-shirt" → "t shirt");
 * - the apostrophe, colon and period are not in the punctuation list; a
 *   period is deleted unless a digit follows it ("2." → "2", "2.5" stays),
 *   and only the first 32 such periods, because the official call passes
 *   `re.UNICODE` (= 32) where `re.sub` expects its `count`;
 * - number words zero…ten and "none" become digits, the articles a/an/the
 *   are dropped, and the contraction table below is applied word by word
 *   after lowercasing, so its capitalised keys ("Im", "Ive") never match.
 */

/** Marks that `processPunctuation` deletes or turns into spaces (the official `punct` list). */
export const ANSWER_PUNCTUATION: readonly string[] = [...';/[]"{}()=+\\_-><@`,?!']

/** The official `manualMap`: number words to digits. */
export const NUMBER_WORDS: ReadonlyMap<string, string> = new Map([
  ['none', '0'],
  ...['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'].map(
    (word, digit) => [word, String(digit)] as const,
  ),
])

/** Words `processDigitArticle` drops. */
export const ARTICLES: ReadonlySet<string> = new Set(['a', 'an', 'the'])

/** The official `contractions` table, verbatim (including its odd entries such as "somebody'd" → "somebodyd"). */
export const CONTRACTIONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    aint: "ain't",
    arent: "aren't",
    cant: "can't",
    couldve: "could've",
    couldnt: "couldn't",
    "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've",
    didnt: "didn't",
    doesnt: "doesn't",
    dont: "don't",
    hadnt: "hadn't",
    "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've",
    hasnt: "hasn't",
    havent: "haven't",
    hed: "he'd",
    "hed've": "he'd've",
    "he'dve": "he'd've",
    hes: "he's",
    howd: "how'd",
    howll: "how'll",
    hows: "how's",
    "Id've": "I'd've",
    "I'dve": "I'd've",
    Im: "I'm",
    Ive: "I've",
    isnt: "isn't",
    itd: "it'd",
    "itd've": "it'd've",
    "it'dve": "it'd've",
    itll: "it'll",
    "let's": "let's",
    maam: "ma'am",
    mightnt: "mightn't",
    "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've",
    mightve: "might've",
    mustnt: "mustn't",
    mustve: "must've",
    neednt: "needn't",
    notve: "not've",
    oclock: "o'clock",
    oughtnt: "oughtn't",
    "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at",
    shant: "shan't",
    "shed've": "she'd've",
    "she'dve": "she'd've",
    "she's": "she's",
    shouldve: "should've",
    shouldnt: "shouldn't",
    "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    "somebody'd": 'somebodyd',
    "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've",
    somebodyll: "somebody'll",
    somebodys: "somebody's",
    someoned: "someone'd",
    "someoned've": "someone'd've",
    "someone'dve": "someone'd've",
    someonell: "someone'll",
    someones: "someone's",
    somethingd: "something'd",
    "somethingd've": "something'd've",
    "something'dve": "something'd've",
    somethingll: "something'll",
    thats: "that's",
    thered: "there'd",
    "thered've": "there'd've",
    "there'dve": "there'd've",
    therere: "there're",
    theres: "there's",
    theyd: "they'd",
    "theyd've": "they'd've",
    "they'dve": "they'd've",
    theyll: "they'll",
    theyre: "they're",
    theyve: "they've",
    twas: "'twas",
    wasnt: "wasn't",
    "wed've": "we'd've",
    "we'dve": "we'd've",
    weve: "we've",
    werent: "weren't",
    whatll: "what'll",
    whatre: "what're",
    whats: "what's",
    whatve: "what've",
    whens: "when's",
    whered: "where'd",
    wheres: "where's",
    whereve: "where've",
    whod: "who'd",
    "whod've": "who'd've",
    "who'dve": "who'd've",
    wholl: "who'll",
    whos: "who's",
    whove: "who've",
    whyll: "why'll",
    whyre: "why're",
    whys: "why's",
    wont: "won't",
    wouldve: "would've",
    wouldnt: "wouldn't",
    "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've",
    yall: "y'all",
    "yall'll": "y'all'll",
    "y'allll": "y'all'll",
    "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've",
    youd: "you'd",
    "youd've": "you'd've",
    "you'dve": "you'd've",
    youll: "you'll",
    youre: "you're",
    youve: "you've",
  }),
)

const COMMA_BETWEEN_DIGITS = /\d,\d/
/**
 * The official `periodStrip`, "(?!<=\d)(\.)(?!\d)". Its first group is a
 * negative lookahead for the text "<=digit", not the lookbehind that was
 * meant, so it never excludes anything: every period not followed by a digit
 * matches, including the one in "1.".
 */
const PERIOD_NOT_BEFORE_DIGIT = /(?!<=\d)\.(?!\d)/g
/** `re.UNICODE`, passed as `count` to `re.sub` by the official code. */
const MAX_PERIODS_STRIPPED = 32

const MARKS: ReadonlySet<string> = new Set(ANSWER_PUNCTUATION)

/**
 * The official `processPunctuation`. The official code replaces mark by mark
 * over the whole text; as a replacement never creates a mark and every
 * decision looks at the original text, one pass over the characters gives
 * the same result, many times faster.
 */
export function processPunctuation(text: string): string {
  const deleteMarks = COMMA_BETWEEN_DIGITS.test(text)
  let out = ''
  for (const char of text) {
    if (!MARKS.has(char)) out += char
    else if (!deleteMarks && !text.includes(`${char} `) && !text.includes(` ${char}`)) out += ' '
  }
  if (!out.includes('.')) return out
  let stripped = 0
  return out.replace(PERIOD_NOT_BEFORE_DIGIT, (period) => (stripped++ < MAX_PERIODS_STRIPPED ? '' : period))
}

/**
 * The official `processDigitArticle`: lowercase, split on whitespace, number
 * words → digits, drop articles, expand contractions.
 */
export function processDigitArticle(text: string): string {
  const words = text
    .toLowerCase()
    .split(/\s+/)
    .filter((word) => word !== '')
  return words
    .map((word) => NUMBER_WORDS.get(word) ?? word)
    .filter((word) => !ARTICLES.has(word))
    .map((word) => CONTRACTIONS.get(word) ?? word)
    .join(' ')
}

/** What the official evaluation does to every answer before any comparison: newlines and tabs to spaces, then trim. */
export function cleanAnswerWhitespace(answer: string): string {
  return answer.replace(/[\n\t]/g, ' ').trim()
}

/** The full official normalisation of one answer: whitespace clean-up, `processPunctuation`, `processDigitArticle`. */
export function normalizeAnswer(answer: string): string {
  return processDigitArticle(processPunctuation(cleanAnswerWhitespace(answer)))
}
