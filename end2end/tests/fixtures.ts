import { test as base, expect } from '@playwright/test';

export { expect };

/**
 * Every test runs under the site's Content-Security-Policy and fails on any
 * violation: the browser reports each one as a `securitypolicyviolation` event,
 * which is logged to the console and collected here.
 */
export const test = base.extend<{ cspViolations: void }>({
  cspViolations: [
    async ({ context, page }, use) => {
      const violations: string[] = [];
      const watch = (watched: typeof page) =>
        watched.on('console', (message) => {
          if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
        });
      watch(page);
      context.on('page', watch);
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (event) => {
          console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
        });
      });
      await use();
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});
