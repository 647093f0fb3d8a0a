// Lint: neostandard (the `standard` style, flat config, TypeScript through typescript-eslint)
// with semicolons, as the code has always been written, and a line-length cap.
import neostandard from 'neostandard';

export default [
  ...neostandard({ ts: true, semi: true, ignores: ['dist/**', 'node_modules/**', '.bench/**'] }),
  {
    rules: {
      // A line that is nothing but a message may run long, so the message can be found with grep.
      '@stylistic/max-len': ['error', {
        code: 140,
        ignoreUrls: true,
        ignoreRegExpLiterals: true,
        ignorePattern: "^\\s*(`[^`]*`|'[^']*')[,;)]*$",
      }],
      // Loops here wait on flags that callbacks set, which this rule cannot see.
      'no-unmodified-loop-condition': 'off',
      // `void promise` marks a promise deliberately not awaited (its errors are handled inside).
      'no-void': ['error', { allowAsStatement: true }],
      // fuse-native's callbacks take an errno number first, not an Error.
      'n/no-callback-literal': 'off',
    },
  },
];
