/* frontdesk console (placeholder until the console lands). */
