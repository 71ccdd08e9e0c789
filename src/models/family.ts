/**
 * A model family (transformer, WaveNet) as one object: everything the rest of the program may ask
 * of a model. Training, evaluation, generation, export, the pipeline and the benchmarks talk to
 * this interface and never to a config's `kind`; adding a family is implementing it and listing
 * it in `registry.ts` (docs/architecture.md).
 */
import type { Feeds, Fed, GraphExecutor } from '../engine/executor.js';
import type { Ops, Tensor } from '../engine/ops.js';
import type { SamplingOptions } from '../engine/sampling.js';
import type { Params } from './layers.js';
import type { ParamSpec } from './param-spec.js';
import type { SequenceModel } from './sequence-model.js';
import type { TrainingGraph } from './training-graph.js';

/**
 * The inference graphs: a segment of positions, one step, the transformer's memory roll and keys, and
 * a block of steps that samples its own codes (generation without a host round trip per sample).
 */
export type GraphKind = 'segment' | 'step' | 'roll' | 'keys' | 'block';

/** What a graph is built for: its kind, batch rows and (segment graphs) positions per call. */
export interface GraphSpec {
  kind: GraphKind;
  batch: number;
  /** positions per call: the transformer's segment, any length for WaveNet; 1 for step graphs; K for blocks */
  length: number;
  /** block graphs: how they draw each code (part of the graph, so part of its file's hash) */
  sampling?: SamplingOptions;
}

/**
 * A graph as a function of the model code over `Ops`: it declares its named inputs with
 * `ops.input` and returns its named outputs. The ONNX tracer turns it into a .onnx file; the tfjs
 * executor runs it eagerly on the same feeds.
 */
export type GraphBuilder = <T extends Tensor>(ops: Ops<T>, p: Params<T>) => Record<string, T>;

/**
 * Generation whatever the model: prime rows with known codes, then advance them one sample at a
 * time. Tests may implement it with a small table model.
 */
export interface Generator {
  /** rows generated together */
  readonly batch: number;
  /** e.g. "onnxruntime (cpu, 2 threads)" */
  readonly engine: string;
  /**
   * Feed the same known codes to every row (the prompt), from empty state. Returns the
   * log-probabilities [batch * NUM_CODES] of the code after the last one fed.
   */
  prime(codes: Uint8Array): Promise<Float32Array>;
  /** Feed one code per row; returns the log-probabilities [batch * NUM_CODES] of each row's next code. */
  step(codes: Int32Array): Promise<Float32Array>;
  /** Many samples per call, when the generator has a block graph. */
  readonly block?: {
    size: number;
    /** the sampling the block graph draws with; generation uses the block only with these options */
    sampling: SamplingOptions;
    /** Whether a block can run now (a transformer's must end within its segment); absent: always. */
    fits?(): boolean;
    /**
     * Draw and feed `size` codes per row in one call: from `logprobs` [batch * NUM_CODES] and the
     * uniforms `draws` [size, batch, 2] (Ops.sample's halves). Returns the codes [size * batch],
     * step-major, -1 where a row's log-probabilities could not be sampled, and the log-probabilities
     * after the last.
     */
    run(logprobs: Float32Array, draws: Float32Array): Promise<{ codes: Float32Array; logprobs: Float32Array }>;
  };
  dispose(): Promise<void>;
}

/** The opened graphs a generator drives, by kind (those the family's `generationGraphs` lists). */
export interface GenerationGraphs {
  segment: GraphExecutor;
  /** the block graph, when one was opened: `size` samples per call drawn with `sampling` */
  block?: { exec: GraphExecutor; size: number; sampling: SamplingOptions };
  /** positions per call of the segment graph */
  segmentLength: number;
  step: GraphExecutor;
  roll?: GraphExecutor;
  keys?: GraphExecutor;
}

/**
 * Carried state of segment-mode inference held on the host between graph calls: tensors named as
 * the segment graph's inputs (its outputs are `out.<name>`), and whatever per-row bookkeeping the
 * family needs besides.
 */
export interface HostState {
  readonly batch: number;
  readonly tensors: Record<string, Fed>;
  /** Row b starts afresh (a new file): empty state. */
  reset(b: number): void;
  /** Feeds a segment call of n positions needs besides tokens and the state tensors. */
  segmentFeeds(n: number): Feeds;
  /** Bookkeeping after a segment call of n positions. */
  advance(n: number): void;
  /**
   * Row `to` becomes row `from` of `src`, a state of the same config (maybe another batch): how
   * evaluation moves its last long files to a smaller batch without losing their state.
   */
  copyRow(src: HostState, from: number, to: number): void;
}

/** How training draws its batches from the corpus. */
export type TrainingWindows =
  /** B contiguous streams read segment after segment, state carried between steps */
  | { kind: 'streams'; segment: number }
  /** random crops: `targets` scored positions with `receptiveField - 1` inputs of context before them */
  | { kind: 'crops'; receptiveField: number; targets: number };

/** Positions in one training row: a stream's segment, or a crop's context plus its targets. */
export function windowLength(w: TrainingWindows): number {
  return w.kind === 'crops' ? w.receptiveField - 1 + w.targets : w.segment;
}

/** Memory lengths asked for at evaluation, where a family allows them. */
export interface MemoryOverrides {
  memory?: number;
  compressedMemory?: number;
}

/** Memory lengths an evaluation ran with, beside those the model was trained with. */
export interface MemoryOverride {
  memory: number;
  compressedMemory: number;
  trainedMemory: number;
  trainedCompressedMemory: number;
}

export interface ModelFamily<C extends { kind: string } = { kind: string }> {
  readonly kind: C['kind'];
  /** Named configs of this family. */
  readonly presets: Readonly<Record<string, C>>;
  /** Validates a JSON/YAML config, naming `source` and every problem at once. */
  parse(json: unknown, source: string): C;
  /** The model's name as the paper's comparison uses it. */
  name(cfg: C): string;
  /** Sizes and parameter count in one line. */
  describe(cfg: C): string;
  /** Further lines for `ctspeech model`: context span, cost per sample. */
  details(cfg: C): string[];
  paramSpec(cfg: C): ParamSpec[];
  /** Multiply-add FLOPs per scored sample, forward and training. */
  flopsPerSample(cfg: C): { forward: number; train: number };
  trainingWindows(cfg: C): TrainingWindows;
  /** The model as training runs it: (params, codes, state) -> (logits, state', aux). */
  sequenceModel<T extends Tensor>(cfg: C): SequenceModel<T>;
  /**
   * The training loss as a graph with every per-step datum an input, for `batch` rows of `length`
   * positions (the trainingWindows' row length), and its host-side feeds.
   */
  trainingGraph(cfg: C, batch: number, length: number): TrainingGraph;
  /** The config evaluation runs (no auxiliary loss; memory overrides applied where allowed). */
  evalConfig(cfg: C, asked: MemoryOverrides): { cfg: C; override?: MemoryOverride };
  /**
   * Positions per segment-graph call when scoring files whose typical (median) file has `typical` inputs; `asked`
   * is honoured where the family scores any length exactly.
   */
  scoreLength(cfg: C, typical?: number, asked?: number): number;
  /** Positions per segment-graph call when a generator primes on a prompt. */
  primeLength(cfg: C): number;
  /** The graphs generation needs. */
  generationGraphs(cfg: C): Exclude<GraphKind, 'block'>[];
  /**
   * The most samples its 'block' graph may take per call (many samples per call, sampled in the
   * graph); 0 when it has none. A transformer's block stays within one segment.
   */
  maxBlockSize(cfg: C): number;
  graphBuilder(cfg: C, spec: GraphSpec): GraphBuilder;
  /** Empty carried state for `batch` rows, as the segment graph takes it. */
  hostState(cfg: C, batch: number): HostState;
  generator(cfg: C, batch: number, engine: string, graphs: GenerationGraphs): Generator;
}
