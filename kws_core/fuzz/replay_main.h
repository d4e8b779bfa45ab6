/* replay_main.h - the replay driver shared by the fuzz targets: built with
 * -DKWS_FUZZ_REPLAY (no libFuzzer) it provides main(), which runs
 * LLVMFuzzerTestOneInput over every file given (or every file in a folder).
 * Included at the end of each fuzz_*.c. */
/* ------------------------------------------------------------------------ */
/* Replay driver (no libFuzzer): ./fuzz_replay FILE_OR_FOLDER...             */
/* ------------------------------------------------------------------------ */
#ifdef KWS_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    for (;;) {
        size_t got;
        if (size == cap) {
            uint8_t *nd;
            cap = cap ? cap * 2u : 65536u;
            nd = (uint8_t *)realloc(data, cap);
            if (nd == NULL) {
                free(data);
                fclose(f);
                fprintf(stderr, "out of memory reading %s\n", path);
                return 1;
            }
            data = nd;
        }
        got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0u) break;
    }
    if (ferror(f)) {
        free(data);
        fclose(f);
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    printf("ok %s (%lu bytes)\n", path, (unsigned long)size);
    fflush(stdout);
    return 0;
}

static int replay_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "cannot stat %s\n", path);
        return 1;
    }
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        int bad = 0;
        if (d == NULL) {
            fprintf(stderr, "cannot open folder %s\n", path);
            return 1;
        }
        while ((e = readdir(d)) != NULL) {
            char *sub;
            size_t n;
            struct stat eb;
            if (e->d_name[0] == '.') continue; /* ., .., hidden files */
            n = strlen(path) + strlen(e->d_name) + 2u;
            sub = (char *)malloc(n);
            if (sub == NULL) {
                closedir(d);
                return 1;
            }
            snprintf(sub, n, "%s/%s", path, e->d_name);
            if (stat(sub, &eb) == 0 && S_ISREG(eb.st_mode)) bad |= replay_file(sub);
            free(sub);
        }
        closedir(d);
        return bad;
    }
    return replay_file(path);
}

int main(int argc, char **argv)
{
    int i, bad = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) bad |= replay_path(argv[i]);
    return bad;
}
#endif /* KWS_FUZZ_REPLAY */
