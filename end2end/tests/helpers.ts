import { Page, expect, TestInfo } from '@playwright/test';

/** Opens a page and waits until it is hydrated (interactive), not just painted. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** A screenshot kept with the test's artifacts. */
export async function snap(page: Page, testInfo: TestInfo, name: string) {
  await page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
}

export const demoBuyer = { email: 'buyer@ninefold.test', password: 'buyer-demo-pass', name: 'Bea Buyer' };

export function uniqueEmail(prefix: string) {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}
