#!/usr/bin/env node
// The CLI is compiled by `npm install` (prepare); run it from dist.
import '../dist/src/cli/main.js';
