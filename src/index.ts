/**
 * The library entry point (package.json "main"): what the `ctspeech` commands are built from, for use
 * from other programs. Training and tfjs evaluation run on the tfjs backend chosen by `initBackend`
 * (call it first); evaluation on onnxruntime takes `ortOpener(runDir, ...)` as `open`.
 * docs/architecture.md describes the parts.
 */

// Audio: decoding and WaveNet mu-law (docs/audio.md).
export { decodeAudio, type DecodedAudio } from './audio/decode.js';
export { AudioDecodeError } from './audio/errors.js';
export { MU, muLawDecode, muLawEncode, SILENCE_CODE } from './audio/mulaw.js';
export { writeWav } from './audio/wav.js';
export {
  spectrogram,
  type Spectrogram,
  spectrogramPng,
  type SpectrogramPlotOptions,
  wavSpectrogramPng,
} from './audio/spectrogram.js';
export { speechStart } from './audio/speech-start.js';

// Corpora.
export { type PrepareOptions, type PrepareProgress, type PrepareReport, prepareCorpus } from './data/prepare.js';
export { type Manifest, readManifest } from './data/manifest.js';

// Models: configs, presets, weight files (docs/models.md, docs/safetensors.md).
export { ConfigError } from './models/config.js';
export { ALL_PRESETS, describeModel, type ModelConfig, modelPreset, parseModelConfig } from './models/registry.js';
export { loadModel, ModelFileError, type ParamArrays, saveModel } from './models/model-files.js';

// Engine choice (docs/engines.md).
export { type BackendInfo, type BackendName, initBackend } from './engine/backend.js';

// Training.
export { RunError, type TrainOptions, type TrainProgress, type TrainSummary } from './train/run-options.js';
export { train } from './train/trainer.js';

// Evaluation and generation.
export { type EvalFile, type EvalOptions, type EvalResult, evaluateCodes, type FileNll } from './infer/evaluate.js';
export { type EngineOptions, openGenerator, ortOpener } from './infer/engines.js';
export { codesToWav, generateCodes, type GenerateOptions, type GenerateResult } from './infer/generate.js';

// Reports: report.md and report.html from run folders (summarizeRun reads one).
export { type RunSummary, summarizeRun } from './report/run-summary.js';
export { writeReports } from './report/write-reports.js';
export { chartPng, chartSvg, type LineChart } from './report/chart.js';
