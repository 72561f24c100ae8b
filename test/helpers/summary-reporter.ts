import type { Reporter, TestModule } from 'vitest/node';

/**
 * Closes the run with one plain line, `tests: N passed, N failed, N skipped`, that any
 * CI log reader can take in, and names the skipped suites.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skippedSuites = new Set<string>();
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          skipped++;
          skippedSuites.add(
            `${mod.moduleId.replace(process.cwd() + '/', '')} > ${test.parent.type === 'suite' ? test.parent.fullName : test.name}`,
          );
        }
      }
      if (mod.state() === 'failed' && mod.children.size === 0) failed++;
    }
    if (skippedSuites.size > 0) {
      console.log(`\nskipped:\n  ${[...skippedSuites].join('\n  ')}`);
    }
    console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
}
