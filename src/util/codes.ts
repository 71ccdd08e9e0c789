/** The 8-bit mu-law alphabet every model reads and predicts: codes 0..255 (docs/audio.md). */
export const NUM_CODES = 256;

/** The code of a zero sample, encodeSample(0): what padding holds (checked against the formula in the tests). */
export const SILENCE_CODE = 128;
