import { test as base, expect, BrowserContext, Page } from '@playwright/test';

export { expect };

/**
 * Every test runs under the site's Content-Security-Policy and fails on any
 * violation: the browser reports each one as a `securitypolicyviolation` event,
 * which is logged to the console and collected here, from the test's own context
 * and from every context it opens with `browser.newContext()`.
 */
export const test = base.extend<{ cspViolations: void }>({
  cspViolations: [
    async ({ browser, context, page }, use) => {
      const violations: string[] = [];
      const watchPage = (watched: Page) =>
        watched.on('console', (message) => {
          if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
        });
      const watchContext = async (watched: BrowserContext) => {
        watched.on('page', watchPage);
        await watched.addInitScript(() => {
          document.addEventListener('securitypolicyviolation', (event) => {
            console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
          });
        });
      };
      watchPage(page);
      await watchContext(context);
      const newContext = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const opened = await newContext(options);
        await watchContext(opened);
        return opened;
      };
      try {
        await use();
      } finally {
        browser.newContext = newContext;
      }
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});
