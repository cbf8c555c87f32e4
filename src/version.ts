/** bayesdl's version, recorded in every saved posterior. Keep in step with package.json. */
export const VERSION = "0.1.0";
